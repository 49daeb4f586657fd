//! Host ends of serial ports and the debug console: `stdio`, `file:PATH`, `none` (as QEMU's
//! `-serial` takes them).

use nestor_device::CharBackend;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::str::FromStr;
use std::sync::mpsc::{channel, Receiver};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChardevSpec {
    Stdio,
    File(String),
    None,
}

impl FromStr for ChardevSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stdio" => Ok(Self::Stdio),
            "none" | "null" => Ok(Self::None),
            _ => match s.strip_prefix("file:") {
                Some(path) if !path.is_empty() => Ok(Self::File(path.to_string())),
                _ => Err(format!("'{s}': expected stdio, file:PATH or none")),
            },
        }
    }
}

/// Output to stdout; input from stdin, read by a thread so the guest never blocks on it.
struct Stdio {
    input: Receiver<u8>,
}

impl Stdio {
    fn new() -> Self {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut b = [0u8; 1];
            while let Ok(1) = stdin.read(&mut b) {
                if tx.send(b[0]).is_err() {
                    break;
                }
            }
        });
        Self { input: rx }
    }
}

impl CharBackend for Stdio {
    fn write(&mut self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) must not stop the guest.
        let _ = out.write_all(bytes);
        if bytes.contains(&b'\n') {
            let _ = out.flush();
        }
    }
    fn read(&mut self) -> Option<u8> {
        self.input.try_recv().ok()
    }
    fn flush(&mut self) {
        let _ = std::io::stdout().flush();
    }
}

struct FileOut {
    out: BufWriter<File>,
}

impl CharBackend for FileOut {
    fn write(&mut self, bytes: &[u8]) {
        let _ = self.out.write_all(bytes);
    }
    fn read(&mut self) -> Option<u8> {
        None
    }
    fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

impl Drop for FileOut {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// Open the host end a spec names; `None` for an unconnected device.
pub fn open_chardev(spec: &ChardevSpec) -> anyhow::Result<Option<Box<dyn CharBackend>>> {
    Ok(match spec {
        ChardevSpec::Stdio => Some(Box::new(Stdio::new())),
        ChardevSpec::File(path) => {
            let f = File::create(path).map_err(|e| anyhow::anyhow!("cannot create {path}: {e}"))?;
            Some(Box::new(FileOut {
                out: BufWriter::new(f),
            }))
        }
        ChardevSpec::None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!("stdio".parse(), Ok(ChardevSpec::Stdio));
        assert_eq!("none".parse(), Ok(ChardevSpec::None));
        assert_eq!(
            "file:/tmp/x".parse(),
            Ok(ChardevSpec::File("/tmp/x".into()))
        );
        assert!("file:".parse::<ChardevSpec>().is_err());
        assert!("tcp:1234".parse::<ChardevSpec>().is_err());
    }
}
