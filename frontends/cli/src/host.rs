//! Host ports that outlive one machine: the window's Ctrl+Alt+2 swaps in a machine resumed
//! from a snapshot, and its serial port, debug console and POST log must go on writing to the
//! same files (reopening one would truncate what the first machine wrote).

use nestor_device::CharBackend;
use nestor_headless::{open_chardev, ChardevSpec};
use nestor_machine::MachineConfig;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// One host backend shared by every machine the process builds.
#[derive(Clone)]
pub struct SharedChar {
    inner: Arc<Mutex<Box<dyn CharBackend>>>,
    has_input: bool,
}

impl SharedChar {
    fn new(backend: Box<dyn CharBackend>) -> Self {
        Self {
            has_input: backend.has_input(),
            inner: Arc::new(Mutex::new(backend)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn CharBackend>> {
        // A backend that panicked mid-write leaves nothing we cannot go on with.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CharBackend for SharedChar {
    fn write(&mut self, bytes: &[u8]) {
        self.lock().write(bytes);
    }
    fn read(&mut self) -> Option<u8> {
        self.lock().read()
    }
    fn flush(&mut self) {
        self.lock().flush();
    }
    fn has_input(&self) -> bool {
        self.has_input
    }
}

/// COM1, the 0xE9 debug console and the POST log as `run` opened them.
#[derive(Clone, Default)]
pub struct HostPorts {
    serial: Option<SharedChar>,
    debugcon: Option<SharedChar>,
    post_log: Option<SharedChar>,
}

fn open_shared(spec: &ChardevSpec) -> anyhow::Result<Option<SharedChar>> {
    Ok(open_chardev(spec)?.map(SharedChar::new))
}

fn boxed(port: Option<&SharedChar>) -> Option<Box<dyn CharBackend>> {
    port.map(|p| Box::new(p.clone()) as Box<dyn CharBackend>)
}

impl HostPorts {
    /// Open the backends the flags name.
    pub fn open(
        serial: &ChardevSpec,
        debugcon: &ChardevSpec,
        post_log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let post_log = match post_log {
            Some(path) => open_shared(&ChardevSpec::File(path.display().to_string()))?,
            None => None,
        };
        Ok(Self {
            serial: open_shared(serial)?,
            debugcon: open_shared(debugcon)?,
            post_log,
        })
    }

    /// Wire the ports into a machine's configuration.
    pub fn wire(&self, config: &mut MachineConfig) {
        config.serial[0] = boxed(self.serial.as_ref());
        config.debugcon = boxed(self.debugcon.as_ref());
        config.post_log = boxed(self.post_log.as_ref());
    }

    /// The same ports for a machine resumed from a snapshot.
    pub fn resume_options(&self) -> nestor_machine::snapshot::ResumeOptions {
        let mut opts = nestor_machine::snapshot::ResumeOptions {
            debugcon: boxed(self.debugcon.as_ref()),
            post_log: boxed(self.post_log.as_ref()),
            ..Default::default()
        };
        opts.serial[0] = boxed(self.serial.as_ref());
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_machine_writes_on_in_the_same_file() {
        let path = std::env::temp_dir().join(format!("nestor-ports-{}.txt", std::process::id()));
        let spec = ChardevSpec::File(path.display().to_string());
        let ports = HostPorts::open(&ChardevSpec::None, &spec, None).expect("open");
        for text in [b"first ".as_slice(), b"second"] {
            let mut config = MachineConfig::new(vec![0; 64 << 10], 1);
            ports.wire(&mut config);
            let mut debugcon = config.debugcon.take().expect("a debug console");
            debugcon.write(text);
            debugcon.flush();
        }
        let written = std::fs::read_to_string(&path).expect("read");
        assert_eq!(written, "first second");
        let _ = std::fs::remove_file(&path);
    }
}
