//! The gdb server inside the run loop: the machine runs in slices and, between slices, the
//! socket is polled for gdb's packets (Ctrl-C included). Nothing runs on another thread.

use crate::target::{NestorTarget, TargetFailure};
use gdbstub::common::Signal;
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{DisconnectReason, GdbStub, GdbStubError, SingleThreadStopReason};
use gdbstub::target::ext::breakpoints::WatchKind as GdbWatchKind;
use nestor_cpu::debug::{DebugSetup, DebugStop, WatchKind};
use nestor_machine::debug::SliceExit;
use nestor_machine::{Machine, MachineError, MachineExit};
use std::collections::VecDeque;
use std::io::Read;
use std::net::{TcpListener, TcpStream};

/// Instructions run between two looks at the socket while gdb waits for a stop.
const SLICE: u64 = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    #[error("gdb connection: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error("gdb protocol: {0}")]
    Protocol(String),
}

/// How a debugged run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GdbOutcome {
    /// The machine stopped by itself (with or without gdb attached).
    Exit(MachineExit),
    /// gdb killed the guest.
    Killed,
}

/// Run `machine` serving gdb on `listener`. With `wait`, the CPU holds before its first
/// instruction until gdb connects (and tells it to go); otherwise the guest runs and stops
/// when gdb connects. After gdb detaches the guest runs on to its end.
pub fn run_with_gdb(
    machine: &mut Machine,
    listener: &TcpListener,
    wait: bool,
    max_insns: Option<u64>,
) -> Result<GdbOutcome, GdbError> {
    let stream = if wait {
        listener.set_nonblocking(false)?;
        listener.accept()?.0
    } else {
        listener.set_nonblocking(true)?;
        loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
            if let SliceExit::Exit(e) = machine.run_slice(SLICE, max_insns)? {
                return Ok(GdbOutcome::Exit(e));
            }
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    tracing::info!("gdb connected from {:?}", stream.peer_addr().ok());
    match session(machine, stream, max_insns)? {
        Some(outcome) => Ok(outcome),
        None => run_detached(machine, max_insns),
    }
}

/// After gdb detached: nothing armed, the guest runs to its end.
fn run_detached(machine: &mut Machine, max_insns: Option<u64>) -> Result<GdbOutcome, GdbError> {
    machine.set_debug(&DebugSetup::default())?;
    loop {
        if let SliceExit::Exit(e) = machine.run_slice(u64::MAX, max_insns)? {
            return Ok(GdbOutcome::Exit(e));
        }
    }
}

fn protocol(e: GdbStubError<TargetFailure, std::io::Error>) -> GdbError {
    GdbError::Protocol(e.to_string())
}

/// Serve one gdb connection. `None`: gdb detached and the guest should go on.
fn session(
    machine: &mut Machine,
    stream: TcpStream,
    max_insns: Option<u64>,
) -> Result<Option<GdbOutcome>, GdbError> {
    let mut target = NestorTarget::new(machine);
    let mut pending: VecDeque<u8> = VecDeque::new();
    let mut sm = GdbStub::new(stream)
        .run_state_machine(&mut target)
        .map_err(protocol)?;
    loop {
        sm = match sm {
            GdbStubStateMachine::Idle(mut inner) => {
                let byte = match pending.pop_front() {
                    Some(b) => b,
                    None => match ConnectionExt::read(inner.borrow_conn()) {
                        Ok(b) => b,
                        // gdb went away without a word: as a detach, the guest goes on.
                        Err(e) if gone(&e) => return Ok(None),
                        Err(e) => return Err(e.into()),
                    },
                };
                inner.incoming_data(&mut target, byte).map_err(protocol)?
            }
            GdbStubStateMachine::Running(mut inner) => {
                if pending.is_empty() && !poll_socket(inner.borrow_conn(), &mut pending)? {
                    return Ok(None);
                }
                if let Some(byte) = pending.pop_front() {
                    inner.incoming_data(&mut target, byte).map_err(protocol)?
                } else {
                    match target.machine.run_slice(SLICE, max_insns)? {
                        SliceExit::SliceDone => GdbStubStateMachine::Running(inner),
                        SliceExit::Debug(stop) => {
                            target.last_stop = Some(stop);
                            let reason = stop_reason(&target, stop);
                            inner.report_stop(&mut target, reason).map_err(protocol)?
                        }
                        SliceExit::Exit(exit) => {
                            let reason = SingleThreadStopReason::Exited(exit_code(exit));
                            // gdb may already be gone; the guest's end is what matters.
                            let _ = inner.report_stop(&mut target, reason);
                            return Ok(Some(GdbOutcome::Exit(exit)));
                        }
                    }
                }
            }
            GdbStubStateMachine::CtrlCInterrupt(inner) => {
                let reason = Some(SingleThreadStopReason::Signal(Signal::SIGINT));
                inner
                    .interrupt_handled(&mut target, reason)
                    .map_err(protocol)?
            }
            GdbStubStateMachine::Disconnected(inner) => {
                return Ok(match inner.get_reason() {
                    DisconnectReason::Kill => Some(GdbOutcome::Killed),
                    _ => None,
                });
            }
        };
    }
}

/// Move whatever gdb has sent into `pending` without waiting; false when gdb has gone.
fn poll_socket(conn: &mut TcpStream, pending: &mut VecDeque<u8>) -> Result<bool, GdbError> {
    let mut buf = [0u8; 1024];
    conn.set_nonblocking(true)?;
    let got = Read::read(conn, &mut buf);
    conn.set_nonblocking(false)?;
    match got {
        Ok(0) => Ok(false),
        Ok(n) => {
            pending.extend(&buf[..n]);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
        Err(e) if gone(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Does this error mean the peer closed the connection?
fn gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
    )
}

fn stop_reason(t: &NestorTarget<'_>, stop: DebugStop) -> SingleThreadStopReason<u64> {
    match stop {
        DebugStop::Breakpoint(addr) if t.sw_breakpoints.contains(&addr) => {
            SingleThreadStopReason::SwBreak(())
        }
        DebugStop::Breakpoint(_) => SingleThreadStopReason::HwBreak(()),
        DebugStop::Watch { kind, addr } => SingleThreadStopReason::Watch {
            tid: (),
            kind: match kind {
                WatchKind::Read => GdbWatchKind::Read,
                WatchKind::Write => GdbWatchKind::Write,
                WatchKind::Access => GdbWatchKind::ReadWrite,
            },
            addr,
        },
        DebugStop::Step => SingleThreadStopReason::DoneStep,
        DebugStop::Exception(v) => SingleThreadStopReason::Signal(exception_signal(v)),
        DebugStop::ModeSwitch { .. } => SingleThreadStopReason::Signal(Signal::SIGTRAP),
    }
}

/// The Unix signal gdb shows for an exception vector.
fn exception_signal(vector: u8) -> Signal {
    match vector {
        0 | 16 | 19 => Signal::SIGFPE,
        1 | 3 => Signal::SIGTRAP,
        6 => Signal::SIGILL,
        17 => Signal::SIGBUS,
        _ => Signal::SIGSEGV,
    }
}

/// What gdb reports as the inferior's exit code.
fn exit_code(exit: MachineExit) -> u8 {
    match exit {
        MachineExit::PowerOff => 0,
        MachineExit::DebugExit(code) => code as u8,
        MachineExit::TripleFault => 4,
        MachineExit::BudgetExhausted => 6,
        MachineExit::HaltedForever => 8,
    }
}
