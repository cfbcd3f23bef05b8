//! Downloads of recordings in flight, per recipient: one company's many parallel readers
//! cannot take every store read and connection. A [`Slot`] is taken before a release's
//! provision record and first byte, and given back when its body ends or is dropped (the
//! client went away or was cut by a timeout).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The counts of downloads in flight by recipient. Cheap to clone.
#[derive(Clone, Default)]
pub struct Downloads {
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

/// One download's place in its recipient's count; dropping it gives the place back.
pub struct Slot {
    downloads: Downloads,
    recipient: String,
}

impl Downloads {
    /// A slot for `recipient`, or `None` when it already has `max` downloads in flight.
    pub fn take(&self, recipient: &str, max: usize) -> Option<Slot> {
        let mut counts = self.counts();
        let n = counts.entry(recipient.to_string()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            downloads: self.clone(),
            recipient: recipient.to_string(),
        })
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.downloads.counts();
        if let Some(n) = counts.get_mut(&self.recipient) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.recipient);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_at_its_cap_gets_no_slot_until_one_is_given_back() {
        let d = Downloads::default();
        let a = d.take("acme", 2).expect("first");
        let _b = d.take("acme", 2).expect("second");
        assert!(d.take("acme", 2).is_none());
        assert!(
            d.take("other", 2).is_some(),
            "another recipient is not held up"
        );
        drop(a);
        assert!(d.take("acme", 2).is_some());
    }
}
