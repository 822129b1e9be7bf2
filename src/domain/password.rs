//! Passwords: length policy, Argon2id hashing in PHC form, verification,
//! and the equal-cost path for unknown accounts.

use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MAX_LENGTH: usize = 256;

/// The most an Argon2 hash may ask of an isolate, which has 128 MB in all:
/// the bounds of `ARGON2_*` and of every stored hash that is verified.
pub const MAX_MEMORY_KIB: u32 = 65_536;
pub const MAX_ITERATIONS: u32 = 10;
pub const MAX_PARALLELISM: u32 = 4;

/// A password that meets the length policy. Never printed.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str, min_length: usize, field: &str) -> Result<Self, ApiError> {
        let chars = raw.chars().count();
        if chars < min_length || chars > MAX_LENGTH {
            return Err(ApiError::InvalidRequest(format!(
                "field `{field}` must be {min_length} to {MAX_LENGTH} characters"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashParams {
    /// OWASP's first Argon2id option: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    pub fn validate(self) -> Result<Self, String> {
        if self.memory_kib > MAX_MEMORY_KIB
            || self.iterations > MAX_ITERATIONS
            || self.parallelism > MAX_PARALLELISM
        {
            return Err(format!(
                "Argon2 parameters m={},t={},p={} exceed the bounds m<={MAX_MEMORY_KIB},t<={MAX_ITERATIONS},p<={MAX_PARALLELISM} (an isolate has 128 MB)",
                self.memory_kib, self.iterations, self.parallelism
            ));
        }
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map(|_| self)
            .map_err(|e| format!("invalid Argon2 parameters: {e}"))
    }

    /// The parameters a stored Argon2 hash asks for, if they are within
    /// the bounds: a hash asking for more is refused before any work.
    pub fn of_stored(parsed: &PasswordHash<'_>) -> Result<Self, String> {
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(format!("stored hash uses {}", parsed.algorithm));
        }
        let p = Params::try_from(parsed).map_err(|e| format!("stored hash parameters: {e}"))?;
        Self {
            memory_kib: p.m_cost(),
            iterations: p.t_cost(),
            parallelism: p.p_cost(),
        }
        .validate()
        .map_err(|e| format!("stored hash: {e}"))
    }

    fn argon2(self) -> Argon2<'static> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .expect("validated when the configuration was loaded");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

pub enum Verdict {
    Mismatch,
    Match {
        needs_rehash: bool,
    },
    /// The stored hash cannot be verified (unreadable, or asking for more
    /// memory or time than the bounds): refused without hashing; the
    /// reason is for the log.
    Unusable(String),
}

pub struct Hasher {
    params: HashParams,
}

#[cfg(test)]
thread_local! {
    /// Argon2 runs on this thread, for the table of what each route costs
    /// (`service::rounds`).
    pub static ARGON2_RUNS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one Argon2 run in tests; nothing in the worker.
fn argon2_run() {
    #[cfg(test)]
    ARGON2_RUNS.with(|runs| runs.set(runs.get() + 1));
}

impl Hasher {
    pub fn new(params: HashParams) -> Self {
        Self { params }
    }

    pub fn hash(&self, password: &Password) -> Result<String, ApiError> {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt)
            .map_err(|e| ApiError::internal("password salt: getrandom", e))?;
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| ApiError::internal("password salt: encode", e))?;
        argon2_run();
        self.params
            .argon2()
            .hash_password(password.bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal("password hash: argon2", e))
    }

    pub fn verify(&self, password: &Password, phc: &str) -> Result<Verdict, ApiError> {
        let parsed = match PasswordHash::new(phc) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Verdict::Unusable(format!("stored hash: {e}"))),
        };
        if let Err(reason) = HashParams::of_stored(&parsed) {
            return Ok(Verdict::Unusable(reason));
        }
        // The stored string carries its own parameters; verifying with them
        // lets old hashes keep working after the configuration changes.
        argon2_run();
        match Argon2::default().verify_password(password.bytes(), &parsed) {
            Ok(()) => Ok(Verdict::Match {
                needs_rehash: !self.is_current(&parsed),
            }),
            Err(argon2::password_hash::Error::Password) => Ok(Verdict::Mismatch),
            Err(e) => Err(ApiError::internal("password verify: argon2", e)),
        }
    }

    /// Spends the work of a verification, for accounts that do not exist
    /// or have no password, so response time does not tell them apart.
    /// The work is that of `decoy`, a stored hash, when it has usable
    /// parameters: after an `ARGON2_*` change, stored hashes keep their
    /// old parameters until their owners sign in, and a dummy hash at the
    /// new ones would stand out.
    pub fn burn(&self, password: &Password, decoy: Option<&str>) -> Result<(), ApiError> {
        Hasher::new(self.dummy_params(decoy))
            .hash(password)
            .map(drop)
    }

    /// The decoy's parameters when it has usable ones, else the current.
    fn dummy_params(&self, decoy: Option<&str>) -> HashParams {
        decoy
            .and_then(|d| PasswordHash::new(d).ok())
            .and_then(|parsed| HashParams::of_stored(&parsed).ok())
            .unwrap_or(self.params)
    }

    fn is_current(&self, parsed: &PasswordHash<'_>) -> bool {
        let Ok(stored) = Params::try_from(parsed) else {
            return false;
        };
        parsed.algorithm.as_str() == "argon2id"
            && parsed.version == Some(Version::V0x13.into())
            && stored.m_cost() == self.params.memory_kib
            && stored.t_cost() == self.params.iterations
            && stored.p_cost() == self.params.parallelism
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: HashParams = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn pw(s: &str) -> Password {
        Password::parse(s, 8, "password").unwrap()
    }

    #[test]
    fn length_policy_counts_characters() {
        assert!(Password::parse("1234567", 8, "password").is_err());
        assert!(Password::parse("12345678", 8, "password").is_ok());
        assert!(Password::parse(&"é".repeat(256), 8, "password").is_ok());
        let e = Password::parse(&"x".repeat(257), 8, "new_password").unwrap_err();
        assert!(matches!(e, ApiError::InvalidRequest(d) if d.contains("new_password")));
    }

    #[test]
    fn hashes_are_argon2id_phc_with_the_configured_parameters() {
        let h = Hasher::new(HashParams::OWASP)
            .hash(&pw("correct horse"))
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!h.contains("correct horse"));
    }

    #[test]
    fn verify_accepts_right_and_rejects_wrong() {
        let hasher = Hasher::new(FAST);
        let h = hasher.hash(&pw("correct horse")).unwrap();
        assert!(matches!(
            hasher.verify(&pw("correct horse"), &h).unwrap(),
            Verdict::Match {
                needs_rehash: false
            }
        ));
        assert!(matches!(
            hasher.verify(&pw("wrong horse!"), &h).unwrap(),
            Verdict::Mismatch
        ));
    }

    #[test]
    fn same_password_gets_distinct_salts() {
        let hasher = Hasher::new(FAST);
        assert_ne!(
            hasher.hash(&pw("correct horse")).unwrap(),
            hasher.hash(&pw("correct horse")).unwrap()
        );
    }

    #[test]
    fn changed_parameters_ask_for_a_rehash() {
        let old = Hasher::new(FAST).hash(&pw("correct horse")).unwrap();
        let newer = Hasher::new(HashParams {
            memory_kib: 128,
            ..FAST
        });
        assert!(matches!(
            newer.verify(&pw("correct horse"), &old).unwrap(),
            Verdict::Match { needs_rehash: true }
        ));
    }

    #[test]
    fn parameters_beyond_the_isolate_are_refused_in_config_and_at_rest() {
        let big = HashParams {
            memory_kib: MAX_MEMORY_KIB + 1,
            ..FAST
        };
        assert!(big.validate().unwrap_err().contains("128 MB"));
        assert!(HashParams {
            memory_kib: MAX_MEMORY_KIB,
            ..FAST
        }
        .validate()
        .is_ok());
        // A stored hash asking for 1 GiB is refused before any work.
        let hasher = Hasher::new(FAST);
        let real = hasher.hash(&pw("correct horse")).unwrap();
        let greedy = real.replace("m=64,", "m=1048576,");
        assert!(greedy.contains("m=1048576,"));
        assert!(matches!(
            hasher.verify(&pw("correct horse"), &greedy).unwrap(),
            Verdict::Unusable(r) if r.contains("exceed")
        ));
        let slow = real.replace("t=1,", "t=1000,");
        assert!(matches!(
            hasher.verify(&pw("correct horse"), &slow).unwrap(),
            Verdict::Unusable(_)
        ));
        assert!(matches!(
            hasher.verify(&pw("correct horse"), "not a phc").unwrap(),
            Verdict::Unusable(_)
        ));
    }

    #[test]
    fn the_dummy_hash_copies_a_stored_hashs_parameters() {
        let old = Hasher::new(FAST).hash(&pw("correct horse")).unwrap();
        let current = Hasher::new(HashParams::OWASP);
        assert_eq!(current.dummy_params(Some(&old)), FAST);
        assert_eq!(current.dummy_params(None), HashParams::OWASP);
        // A decoy beyond the bounds, or unreadable, is not copied.
        let greedy = old.replace("m=64,", "m=1048576,");
        assert_eq!(current.dummy_params(Some(&greedy)), HashParams::OWASP);
        assert_eq!(current.dummy_params(Some("")), HashParams::OWASP);
        current.burn(&pw("whatever pw"), Some(&old)).unwrap();
    }

    #[test]
    fn debug_output_hides_the_password() {
        assert!(!format!("{:?}", pw("correct horse")).contains("horse"));
    }
}
