//! Kicking a vCPU out of KVM_RUN: a guest that spins without VM exits (waiting for a timer
//! interrupt in `jmp $`) would otherwise keep the machine loop from ever firing that timer.
//! A watchdog thread signals the vCPU thread when one KVM_RUN has lasted longer than a slice;
//! the signal makes KVM_RUN return EINTR.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// One KVM_RUN may last this long before the vCPU is kicked out.
const SLICE: Duration = Duration::from_millis(10);
const POLL: Duration = Duration::from_millis(2);

struct Shared {
    epoch: Instant,
    /// Nanoseconds since `epoch` at which the current KVM_RUN started, plus one; 0 = not in
    /// KVM_RUN.
    running_since: AtomicU64,
    /// The vCPU thread (a `pthread_t`).
    thread: AtomicU64,
    stop: AtomicBool,
}

/// The watchdog of one vCPU.
pub struct Kicker {
    shared: Arc<Shared>,
    watchdog: Option<std::thread::JoinHandle<()>>,
}

/// The signal used for kicks: the first real-time signal, with a handler that does nothing.
fn kick_signal() -> libc::c_int {
    static INSTALL: Once = Once::new();
    let sig = vmm_sys_util::signal::SIGRTMIN();
    INSTALL.call_once(|| {
        extern "C" fn ignore(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
        if let Err(e) = vmm_sys_util::signal::register_signal_handler(sig, ignore) {
            tracing::warn!("kvm: no kick signal handler ({e}); exit-less guests may stall");
        }
    });
    sig
}

impl Kicker {
    #[must_use]
    pub fn new() -> Self {
        let sig = kick_signal();
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            running_since: AtomicU64::new(0),
            thread: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let watched = Arc::clone(&shared);
        let watchdog = std::thread::Builder::new()
            .name("nestor-kvm-kick".into())
            .spawn(move || watch(&watched, sig))
            .map_err(|e| tracing::warn!("kvm: no kick thread ({e}); exit-less guests may stall"))
            .ok();
        Self { shared, watchdog }
    }

    /// The calling thread enters KVM_RUN now.
    pub fn arm(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.shared.thread.store(me as u64, Ordering::SeqCst);
        let now = self.shared.epoch.elapsed().as_nanos() as u64;
        self.shared.running_since.store(now + 1, Ordering::SeqCst);
    }

    /// KVM_RUN returned.
    pub fn disarm(&self) {
        self.shared.running_since.store(0, Ordering::SeqCst);
    }
}

impl Default for Kicker {
    fn default() -> Self {
        Self::new()
    }
}

fn watch(s: &Shared, sig: libc::c_int) {
    while !s.stop.load(Ordering::SeqCst) {
        std::thread::sleep(POLL);
        let since = s.running_since.load(Ordering::SeqCst);
        let now = s.epoch.elapsed().as_nanos() as u64;
        if since != 0 && now.saturating_sub(since - 1) > SLICE.as_nanos() as u64 {
            let thread = s.thread.load(Ordering::SeqCst) as libc::pthread_t;
            // SAFETY: `thread` is the vCPU thread, alive while it is in KVM_RUN (armed); the
            // signal has a do-nothing handler, so it only interrupts the ioctl.
            unsafe { libc::pthread_kill(thread, sig) };
        }
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
    }
}
