//! One kiroku process: [`Kiroku`] opened and the listeners wired that make the modules above
//! the ledger, capture and analysis follow what those announce (see [`crate::events`]).
//!
//! `kiroku serve`, every command-line command and the tests open kiroku here, so a withdrawal
//! recorded by any of them cancels deliveries and a late `analyze` grant starts an analysis,
//! whoever recorded it. [`Kiroku::open`] alone gives the wiring without listeners.

use std::sync::Arc;

use crate::app::{Kiroku, StartError};
use crate::config::Config;

/// Opens kiroku on `config` with every listener in place.
pub fn open(config: Config) -> Result<Arc<Kiroku>, StartError> {
    let app = Kiroku::open(config)?;
    crate::delivery::listen(&app);
    crate::analysis::late::listen(&app);
    crate::subject::reapply_ledger(&app);
    Ok(app)
}
