//! A SoftHSM2 token for the tests that keep epoch keys in PKCS#11: one token per test
//! process, initialised before the process first loads the module (SoftHSM lists tokens when
//! it is initialised), in `target/softhsm/tokens` (cargo sets `SOFTHSM2_CONF` from
//! `.cargo/config.toml`). Keyrings sharing the token keep apart by their ids. A missing
//! SoftHSM2 fails the test loudly (`scripts/setup.sh` installs Debian's `softhsm2`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use kiroku::config::Pkcs11Config;

/// Debian's SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const PIN: &str = "kiroku-test-pin-4321";

/// The `[keys.pkcs11]` settings of this test process's token.
pub fn token() -> Pkcs11Config {
    static TOKEN: OnceLock<Pkcs11Config> = OnceLock::new();
    TOKEN.get_or_init(init_token).clone()
}

fn init_token() -> Pkcs11Config {
    assert!(
        Path::new(MODULE).exists(),
        "the PKCS#11 tests need SoftHSM2 ({MODULE} is missing): run `bash scripts/setup.sh` \
         (it installs Debian's softhsm2)"
    );
    let conf = PathBuf::from(std::env::var_os("SOFTHSM2_CONF").expect(
        "SOFTHSM2_CONF is unset: run the tests with cargo, which sets it from .cargo/config.toml",
    ));
    let root = conf.parent().unwrap().to_path_buf();
    let tokens = root.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    forget_old_tokens(&tokens);
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        tokens.display()
    );
    if std::fs::read_to_string(&conf).ok().as_deref() != Some(text.as_str()) {
        let tmp = root.join(format!("softhsm2.conf.{}", std::process::id()));
        std::fs::write(&tmp, &text).unwrap();
        std::fs::rename(&tmp, &conf).unwrap();
    }
    let label = format!("kiroku-test-{}", std::process::id());
    let out = std::process::Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", &label])
        .args(["--pin", PIN, "--so-pin", "kiroku-test-so-8765"])
        .output()
        .expect("softhsm2-util runs (Debian's softhsm2)");
    assert!(
        out.status.success(),
        "softhsm2-util --init-token failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pin_file = root.join(format!("{label}.pin"));
    std::fs::write(&pin_file, PIN).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    Pkcs11Config {
        module: MODULE.into(),
        token: label,
        pin_file: Some(pin_file),
        pin: None,
    }
}

/// Tokens of test runs a day old are removed, so the folder does not grow without end.
fn forget_old_tokens(tokens: &Path) {
    let day_ago = SystemTime::now() - Duration::from_secs(86_400);
    for entry in std::fs::read_dir(tokens).into_iter().flatten().flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < day_ago);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
