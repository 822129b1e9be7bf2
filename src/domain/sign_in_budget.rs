//! The budget of failed password sign-ins per address (NIST SP 800-63B
//! §5.2.2): guessing one account's password is bounded however many
//! clients the guesses come from.
//!
//! Each sign-in is counted before its password is compared, so a burst of
//! concurrent guesses gets no more comparisons than the budget. The count
//! is per address, known or unknown alike (an address's count says nothing
//! about whether it has an account), and a success resets it. Past `max`
//! failures the address is locked out of password sign-in, whatever the
//! password, for `window_secs`, then twice that after each further
//! failure, up to a day; once a window passes with no failure after the
//! lock, the count starts over. Code sign-in and password reset stay open,
//! so a person locked out by someone else's guessing still gets in.
//!
//! The D1 store runs the same rules in SQL (`edge::d1`), in the one
//! statement that counts an attempt; the testkit runs them here.

/// At most this many doublings of the lock.
pub const MAX_DOUBLINGS: u32 = 6;
/// No lock lasts longer than a day.
pub const MAX_LOCK_SECS: u64 = 86_400;
/// A count this old is forgotten whatever the budget: past the longest
/// lock and the longest window (`LOGIN_FAILURE_WINDOW_SECONDS` is at most
/// a day). The cron deletes such rows.
pub const FORGOTTEN_AFTER_SECS: u64 = 2 * MAX_LOCK_SECS;
/// NIST's ceiling on consecutive failures; `max` stays under it.
pub const NIST_MAX_FAILURES: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBudget {
    /// Failures before the lock (`LOGIN_MAX_FAILURES`).
    pub max: u32,
    /// The first lock, and the quiet time that forgets the count
    /// (`LOGIN_FAILURE_WINDOW_SECONDS`).
    pub window_secs: u64,
}

/// An address's failures and the time of the last one, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub count: u32,
    pub last_at: u64,
}

impl FailureBudget {
    /// How long `count` failures lock the address, from the last one.
    pub fn lock_secs(&self, count: u32) -> u64 {
        match count.checked_sub(self.max) {
            None => 0,
            Some(past) => (self.window_secs << past.min(MAX_DOUBLINGS)).min(MAX_LOCK_SECS),
        }
    }

    /// The seconds left of the lock at `now`, if the address is locked.
    pub fn locked_for(&self, f: Failures, now: u64) -> Option<u64> {
        let until = f.last_at + self.lock_secs(f.count);
        (f.count >= self.max && now < until).then(|| until - now)
    }

    /// The count after one more attempt at `now` (not locked): it starts
    /// over once a quiet window has passed since the lock ended.
    pub fn counted(&self, f: Failures, now: u64) -> Failures {
        let forgotten = now >= f.last_at + self.lock_secs(f.count) + self.window_secs;
        Failures {
            count: if forgotten { 1 } else { f.count + 1 },
            last_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: FailureBudget = FailureBudget {
        max: 10,
        window_secs: 900,
    };

    /// Counts `n` attempts, each `gap` seconds after the last, from `at`.
    fn attempts(mut f: Failures, n: u32, at: u64, gap: u64) -> Failures {
        for i in 0..n {
            let now = at + u64::from(i) * gap;
            assert_eq!(B.locked_for(f, now), None, "attempt {i} at {now}");
            f = B.counted(f, now);
        }
        f
    }

    #[test]
    fn ten_failures_lock_for_the_window_then_each_one_more_doubles_it() {
        let f = attempts(Failures::default(), 10, 1_000, 1);
        assert_eq!(f.count, 10);
        assert_eq!(B.locked_for(f, f.last_at), Some(900));
        assert_eq!(B.locked_for(f, f.last_at + 899), Some(1));
        assert_eq!(B.locked_for(f, f.last_at + 900), None);
        // The next failure, once the lock is over, locks for twice as long.
        let f = B.counted(f, f.last_at + 900);
        assert_eq!((f.count, B.locked_for(f, f.last_at)), (11, Some(1_800)));
        let f = B.counted(f, f.last_at + 1_800);
        assert_eq!(B.locked_for(f, f.last_at), Some(3_600));
        // Doubling stops at 64 windows, and no lock is over a day.
        assert_eq!(B.lock_secs(10 + MAX_DOUBLINGS), 57_600);
        assert_eq!(B.lock_secs(40), 57_600);
        let long = FailureBudget {
            max: 1,
            window_secs: 86_400,
        };
        assert_eq!(long.lock_secs(5), MAX_LOCK_SECS);
    }

    #[test]
    fn a_quiet_window_after_the_lock_forgets_the_count() {
        let f = attempts(Failures::default(), 9, 1_000, 60);
        // Nine failures, then a quiet window: the tenth starts over.
        assert_eq!(B.counted(f, f.last_at + 900).count, 1);
        assert_eq!(B.counted(f, f.last_at + 899).count, 10);
        // Locked: the window is counted from the lock's end.
        let f = attempts(Failures::default(), 10, 1_000, 1);
        let f = B.counted(f, f.last_at + 900);
        assert_eq!(f.count, 11, "a failure right after the lock is counted on");
        let lock = B.lock_secs(f.count);
        assert_eq!(B.counted(f, f.last_at + lock + 899).count, 12);
        assert_eq!(B.counted(f, f.last_at + lock + 900).count, 1);
    }

    #[test]
    fn slow_guessing_still_meets_the_lock() {
        // One guess every 14 minutes never lets a window pass.
        let f = attempts(Failures::default(), 10, 0, 14 * 60);
        assert!(B.locked_for(f, f.last_at + 1).is_some());
    }
}
