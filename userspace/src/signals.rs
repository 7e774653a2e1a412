//! SIGINT and SIGTERM outside the live capture loops.
//!
//! A thread waits for either signal (the handler itself only wakes it, as
//! async-signal safety demands). While a loop that stops cleanly holds a
//! [`Stopper`] (the live captures, whose tokio handlers see the signal too,
//! and `run --read` until a second signal), the signal is only recorded:
//! the loop sees [`received`], stops and reports. Otherwise the thread removes the
//! temporary files of the outputs still being written (registered by
//! [`with_temps`]) and ends the process with 128 + the signal's number, as
//! a shell reports a process the signal killed (130 for SIGINT, 143 for
//! SIGTERM): without it they stayed behind, hidden, up to the output's size.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The first signal received, 0 before any.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Live [`Stopper`]s, and those of them a second signal overrides.
static STOPPERS: AtomicUsize = AtomicUsize::new(0);
static FIRST_ONLY: AtomicUsize = AtomicUsize::new(0);
/// Temporary files to remove when a signal ends the process.
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Starts handling SIGINT and SIGTERM (once; later calls do nothing). If
/// the handler cannot be set up the signals keep their default action.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        let handle = signals.handle();
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    on_signal(signal);
                }
            });
        if spawned.is_err() {
            // Nobody would act on them.
            handle.close();
        }
    });
}

fn on_signal(signal: i32) {
    let first = RECEIVED
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    let stoppers = STOPPERS.load(Ordering::SeqCst);
    let patient = stoppers > FIRST_ONLY.load(Ordering::SeqCst);
    if stoppers > 0 && (first || patient) {
        return;
    }
    // The lock is kept until the process ends: no output can be committed
    // (or a new temporary file created) after its removal.
    let temps = temps();
    for path in temps.iter() {
        let _ = std::fs::remove_file(path);
    }
    if temps.is_empty() {
        eprintln!("{}: stopped.", Interrupted(signal));
    } else {
        eprintln!(
            "{}: stopped; the outputs not yet complete were removed.",
            Interrupted(signal)
        );
    }
    std::process::exit(128 + signal);
}

fn temps() -> MutexGuard<'static, Vec<PathBuf>> {
    TEMPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the list of temporary files to remove on a signal; the
/// signal thread waits meanwhile, so a file created and registered in `f`
/// (or renamed into place and unregistered) is never missed.
pub fn with_temps<T>(f: impl FnOnce(&mut Vec<PathBuf>) -> T) -> T {
    f(&mut temps())
}

/// The signal received since the start, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// While one lives, signals are only recorded for [`received`].
pub struct Stopper {
    first_only: bool,
}

impl Stopper {
    /// For loops that must end themselves whatever comes (a live capture
    /// detaches its program first).
    pub fn new() -> Self {
        Self::with(false)
    }

    /// For loops that may block: a second signal ends the process as if
    /// no loop were there (CTRL+C twice).
    pub fn until_second() -> Self {
        Self::with(true)
    }

    fn with(first_only: bool) -> Self {
        if first_only {
            FIRST_ONLY.fetch_add(1, Ordering::SeqCst);
        }
        STOPPERS.fetch_add(1, Ordering::SeqCst);
        Stopper { first_only }
    }
}

impl Default for Stopper {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        STOPPERS.fetch_sub(1, Ordering::SeqCst);
        if self.first_only {
            FIRST_ONLY.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The error of a command stopped by a signal after its report:
/// [`crate::cli::main`] prints it and exits with 128 + the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub i32);

impl Interrupted {
    pub fn exit_code(&self) -> u8 {
        (128 + self.0).clamp(0, 255) as u8
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            _ => "a signal",
        };
        write!(f, "Interrupted by {name}")
    }
}

impl std::error::Error for Interrupted {}
