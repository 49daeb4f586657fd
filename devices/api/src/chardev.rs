/// A host-side byte stream for a serial port or debug console (stdout, a file, nothing).
/// It is a host resource: it lives outside the device's saved state and is re-attached on restore.
pub trait CharBackend: Send {
    fn write(&mut self, bytes: &[u8]);
    /// The next byte from the host, if one is waiting.
    fn read(&mut self) -> Option<u8>;
    /// Push buffered output to its destination.
    fn flush(&mut self) {}
    /// Whether this backend can ever produce input. Output-only backends (a log file, nothing)
    /// answer `false`, so that devices do not schedule timers to poll them.
    fn has_input(&self) -> bool {
        true
    }
}

/// Discards output and never has input.
pub struct NullBackend;

impl CharBackend for NullBackend {
    fn write(&mut self, _bytes: &[u8]) {}
    fn read(&mut self) -> Option<u8> {
        None
    }
    fn has_input(&self) -> bool {
        false
    }
}
