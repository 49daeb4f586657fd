//! `--gdb tcp:HOST:PORT`, `-s` and `-S`/`--wait-gdb`: serve gdb from the run loop (QEMU's
//! `-gdb`, `-s` and `-S`).

use anyhow::Context;
use clap::Args;
use nestor_machine::{Machine, MachineExit};
use std::net::TcpListener;

/// Where gdb connects when `-s` or `-S` is given without `--gdb`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:1234";

#[derive(Args, Debug, Default)]
pub struct GdbArgs {
    /// Serve gdb's remote protocol on this TCP address.
    #[arg(long, value_name = "tcp:HOST:PORT")]
    pub gdb: Option<String>,
    /// Short for --gdb tcp:127.0.0.1:1234.
    #[arg(short = 's')]
    pub gdb_default: bool,
    /// Hold the CPU before its first instruction until gdb connects and continues
    /// (implies -s when --gdb is not given).
    #[arg(short = 'S', long = "wait-gdb")]
    pub wait_gdb: bool,
}

impl GdbArgs {
    /// The address to listen on, if gdb was asked for.
    pub fn address(&self) -> anyhow::Result<Option<String>> {
        match &self.gdb {
            Some(spec) => {
                let addr = spec.strip_prefix("tcp:").unwrap_or(spec);
                // "tcp::1234" (QEMU's spelling) means every interface's port 1234.
                let addr = match addr.strip_prefix(':') {
                    Some(port) => format!("0.0.0.0:{port}"),
                    None => addr.to_string(),
                };
                anyhow::ensure!(
                    addr.contains(':'),
                    "--gdb wants tcp:HOST:PORT, got '{spec}'"
                );
                Ok(Some(addr))
            }
            None if self.gdb_default || self.wait_gdb => Ok(Some(DEFAULT_ADDR.to_string())),
            None => Ok(None),
        }
    }
}

/// Run `machine` under the gdb server at `addr`. A guest killed from gdb ends like a power
/// off (exit status 0), as under QEMU.
pub fn run(
    machine: &mut Machine,
    addr: &str,
    args: &GdbArgs,
    max_insns: Option<u64>,
) -> anyhow::Result<MachineExit> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("cannot listen for gdb on {addr}"))?;
    let local = listener.local_addr()?;
    if args.wait_gdb {
        eprintln!("nestor: waiting for gdb on {local} (target remote {local})");
    } else {
        eprintln!("nestor: gdb server on {local}");
    }
    let outcome = nestor_gdb::run_with_gdb(machine, &listener, args.wait_gdb, max_insns)?;
    Ok(match outcome {
        nestor_gdb::GdbOutcome::Exit(exit) => exit,
        nestor_gdb::GdbOutcome::Killed => MachineExit::PowerOff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = |gdb: Option<&str>, s, w| GdbArgs {
            gdb: gdb.map(str::to_string),
            gdb_default: s,
            wait_gdb: w,
        };
        assert_eq!(a(None, false, false).address().ok().flatten(), None);
        assert_eq!(
            a(None, true, false).address().ok().flatten().as_deref(),
            Some(DEFAULT_ADDR)
        );
        assert_eq!(
            a(None, false, true).address().ok().flatten().as_deref(),
            Some(DEFAULT_ADDR)
        );
        assert_eq!(
            a(Some("tcp:127.0.0.1:4321"), false, false)
                .address()
                .ok()
                .flatten()
                .as_deref(),
            Some("127.0.0.1:4321")
        );
        assert_eq!(
            a(Some("tcp::4321"), false, false)
                .address()
                .ok()
                .flatten()
                .as_deref(),
            Some("0.0.0.0:4321")
        );
        assert!(a(Some("tcp:nowhere"), false, false).address().is_err());
    }
}
