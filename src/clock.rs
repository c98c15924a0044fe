//! The server clock, injectable so tests move time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, SubsecRound as _, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// How far this clock runs ahead of the real time. Decisions under an account lock take
    /// the database's clock as read once the lock is held, plus this shift: so a test that
    /// moves this clock moves them too.
    fn shift(&self) -> Duration {
        Duration::zero()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        // Postgres keeps microseconds; a time that round-trips exactly keeps answers stable.
        Utc::now().trunc_subsecs(6)
    }
}

/// The system clock shifted by an offset that tests advance.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_milliseconds: AtomicI64,
}

impl ShiftedClock {
    /// Moves this clock forward.
    pub fn advance(&self, by: Duration) {
        self.offset_milliseconds
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + self.shift()
    }

    fn shift(&self) -> Duration {
        Duration::milliseconds(self.offset_milliseconds.load(Ordering::SeqCst))
    }
}
