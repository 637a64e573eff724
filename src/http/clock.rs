//! Connection deadlines without a timer per request.
//!
//! A tokio timer set for every request head costs system calls on the hot path: arming one
//! that ends before the runtime's next wake-up makes it wake its own reactor (an `eventfd`
//! write and an extra `epoll_wait`). The head and idle timeouts are counted in seconds, so one
//! ticker that looks at every connection's deadline a few times a second does the same work
//! for all of them, and sleeps without a tick while no connection is open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How often deadlines are looked at: the timeouts are this much late at most.
const TICK: Duration = Duration::from_millis(250);
/// No deadline.
const NEVER: u64 = u64::MAX;

pub struct Clock {
    start: Instant,
    watches: Mutex<Vec<Weak<Watch>>>,
    opened: Notify,
}

/// One connection's deadline.
pub struct Watch {
    /// Milliseconds since the clock's start; [`NEVER`] for none.
    deadline: AtomicU64,
    passed: Notify,
    clock: Arc<Clock>,
}

impl Clock {
    /// A clock and its ticker, which runs as long as the runtime does.
    pub fn start() -> Arc<Clock> {
        let clock = Arc::new(Clock {
            start: Instant::now(),
            watches: Mutex::new(Vec::new()),
            opened: Notify::new(),
        });
        tokio::spawn(tick(Arc::clone(&clock)));
        clock
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// A deadline for a new connection, none set yet.
    pub fn watch(self: &Arc<Self>) -> Arc<Watch> {
        let watch = Arc::new(Watch {
            deadline: AtomicU64::new(NEVER),
            passed: Notify::new(),
            clock: Arc::clone(self),
        });
        if let Ok(mut watches) = self.watches.lock() {
            watches.push(Arc::downgrade(&watch));
        }
        self.opened.notify_one();
        watch
    }
}

impl Watch {
    /// The deadline is `after` from now.
    pub fn set(&self, after: Duration) {
        let at = self.clock.now().saturating_add(after.as_millis() as u64);
        self.deadline.store(at, Ordering::Relaxed);
    }

    /// Resolves once the deadline set last has passed.
    pub async fn passed(&self) {
        loop {
            let notified = self.passed.notified();
            if self.clock.now() >= self.deadline.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
}

/// Wakes the connections whose deadline has passed, a few times a second while any is open.
async fn tick(clock: Arc<Clock>) {
    loop {
        let opened = clock.opened.notified();
        let open = {
            let now = clock.now();
            let Ok(mut watches) = clock.watches.lock() else {
                return;
            };
            watches.retain(|w| match w.upgrade() {
                Some(watch) => {
                    if now >= watch.deadline.load(Ordering::Relaxed) {
                        watch.passed.notify_one();
                    }
                    true
                }
                None => false,
            });
            !watches.is_empty()
        };
        if open {
            tokio::time::sleep(TICK).await;
        } else {
            opened.await;
        }
    }
}
