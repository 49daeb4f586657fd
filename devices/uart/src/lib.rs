//! National Semiconductor 16550A UART, one instance per serial port.
//!
//! All registers are modelled: RBR/THR, IER, IIR/FCR (16-byte receive FIFO with trigger levels
//! and the character timeout), LCR with the divisor latch, MCR with loopback, LSR, MSR with its
//! delta bits, and SCR. Interrupts follow the 16550A priorities (line status, received data or
//! timeout, transmitter empty, modem status) and, as on a PC, reach the IRQ line only while
//! OUT2 is set (in loopback mode the OUT2 pin is forced inactive, so the line stays low).
//!
//! Transmission is instant: a byte written to THR goes to the character backend at once and
//! the transmitter is empty again. Reception polls the backend when the guest reads LSR or RBR
//! and, while the guest has the received-data interrupt enabled, on a timer in virtual time.

#[cfg(test)]
mod tests;

use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, CharBackend, ConfigError, Device,
    DeviceConfig, DeviceContext, NullBackend, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Version of [`UartState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// Standard PC serial ports: (I/O base, IRQ) of COM1..COM4.
pub const COM_PORTS: [(u16, u8); 4] = [(0x3f8, 4), (0x2f8, 3), (0x3e8, 4), (0x2e8, 3)];

/// Depth of the receive FIFO.
pub const FIFO_SIZE: usize = 16;

/// The UART's clock divided by 16: the baud rate of divisor 1.
const BASE_BAUD: u64 = 115_200;

/// Bounds of the period at which the backend is polled for input while interrupts want it.
const POLL_MIN_NS: u64 = 100_000;
const POLL_MAX_NS: u64 = 1_000_000;

/// Plugin descriptor. Options: `iobase` (default 0x3F8), `irq` (default 4).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "uart16550",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(Uart::from_config(config)?))
}

mod reg {
    pub const IER_RX: u8 = 0x01;
    pub const IER_THRE: u8 = 0x02;
    pub const IER_LINE: u8 = 0x04;
    pub const IER_MODEM: u8 = 0x08;

    pub const IIR_NONE: u8 = 0x01;
    pub const IIR_LINE: u8 = 0x06;
    pub const IIR_RX: u8 = 0x04;
    pub const IIR_TIMEOUT: u8 = 0x0c;
    pub const IIR_THRE: u8 = 0x02;
    pub const IIR_MODEM: u8 = 0x00;
    pub const IIR_FIFO: u8 = 0xc0;

    pub const LCR_DLAB: u8 = 0x80;

    pub const MCR_DTR: u8 = 0x01;
    pub const MCR_RTS: u8 = 0x02;
    pub const MCR_OUT1: u8 = 0x04;
    pub const MCR_OUT2: u8 = 0x08;
    pub const MCR_LOOP: u8 = 0x10;

    pub const LSR_DR: u8 = 0x01;
    pub const LSR_OE: u8 = 0x02;
    pub const LSR_ERRORS: u8 = 0x1e;
    pub const LSR_THRE: u8 = 0x20;
    pub const LSR_TEMT: u8 = 0x40;

    pub const MSR_CTS: u8 = 0x10;
    pub const MSR_DSR: u8 = 0x20;
    pub const MSR_RI: u8 = 0x40;
    pub const MSR_DCD: u8 = 0x80;
}
use reg::*;

/// Guest-visible state of one UART.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UartState {
    /// Received bytes not yet read (the RBR in 16450 mode, the FIFO in FIFO mode).
    pub rx_fifo: VecDeque<u8>,
    /// Interrupt enable register (low four bits).
    pub ier: u8,
    /// Line control register.
    pub lcr: u8,
    /// Modem control register (low five bits).
    pub mcr: u8,
    /// Scratch register.
    pub scr: u8,
    /// Divisor latch (DLM:DLL).
    pub divisor: u16,
    /// FCR bit 0: FIFO mode.
    pub fifo_enabled: bool,
    /// FCR bits 7-6: receive trigger level code (1, 4, 8, 14 bytes).
    pub rx_trigger: u8,
    /// FCR bit 3.
    pub dma_mode: bool,
    /// LSR error bits (OE, PE, FE, BI) waiting to be read.
    pub line_errors: u8,
    /// MSR bits 7-4 as last seen, to derive the delta bits.
    pub modem_status: u8,
    /// MSR delta bits 3-0 waiting to be read.
    pub modem_deltas: u8,
    /// The transmitter-empty interrupt is pending (cleared by reading IIR or writing THR).
    pub thre_pending: bool,
    /// A character timeout is being reported.
    pub timeout_pending: bool,
    /// Virtual time at which a character timeout occurs if nothing happens before.
    pub timeout_at_ns: Option<u64>,
    /// Virtual time of the next poll of the backend for input.
    pub poll_at_ns: Option<u64>,
    /// Level last driven on the IRQ line.
    pub irq_level: bool,
}

impl Default for UartState {
    fn default() -> Self {
        Self {
            rx_fifo: VecDeque::new(),
            ier: 0,
            lcr: 0,
            mcr: 0,
            scr: 0,
            divisor: 12,
            fifo_enabled: false,
            rx_trigger: 0,
            dma_mode: false,
            line_errors: 0,
            modem_status: MSR_CTS | MSR_DSR | MSR_DCD,
            modem_deltas: 0,
            thre_pending: false,
            timeout_pending: false,
            timeout_at_ns: None,
            poll_at_ns: None,
            irq_level: false,
        }
    }
}

/// A 16550A serial port.
///
/// ```
/// use nestor_device::testing::{BufferBackend, FakeContext};
/// use nestor_device::Device;
/// use nestor_uart::Uart;
///
/// let host = BufferBackend::new();
/// let mut com1 = Uart::new(0x3f8, 4, Box::new(host.clone()));
/// let mut ctx = FakeContext::new();
/// com1.io_write(0x3fb, 1, 0x03, &mut ctx); // LCR: 8 data bits, no parity, 1 stop bit
/// com1.io_write(0x3f8, 1, u32::from(b'A'), &mut ctx);
/// assert_eq!(host.output(), b"A");
/// host.push_input(b"z");
/// assert_eq!(com1.io_read(0x3fd, 1, &mut ctx) & 1, 1); // LSR: data ready
/// assert_eq!(com1.io_read(0x3f8, 1, &mut ctx), u32::from(b'z'));
/// ```
pub struct Uart {
    state: UartState,
    base: u16,
    irq: u8,
    name: String,
    backend: Box<dyn CharBackend>,
}

impl Uart {
    /// A UART at `base` (8 ports) raising `irq`, connected to `backend`.
    #[must_use]
    pub fn new(base: u16, irq: u8, backend: Box<dyn CharBackend>) -> Self {
        Self {
            state: UartState::default(),
            base,
            irq,
            name: format!("uart@{base:x}"),
            backend,
        }
    }

    /// Build from plugin options; the backend is the config's character backend (none: a
    /// port with nothing attached).
    pub fn from_config(config: &mut DeviceConfig) -> Result<Self, ConfigError> {
        config.reject_unknown(&["iobase", "irq"])?;
        let base = config.number_in("iobase", u64::from(COM_PORTS[0].0), 0, 0xfff8)? as u16;
        let irq = config.number_in("irq", u64::from(COM_PORTS[0].1), 0, 15)? as u8;
        let backend = config
            .chardev
            .take()
            .unwrap_or_else(|| Box::new(NullBackend));
        Ok(Self::new(base, irq, backend))
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &UartState {
        &self.state
    }

    /// Replace the host backend (after a restore, for instance).
    pub fn set_backend(&mut self, backend: Box<dyn CharBackend>) {
        self.backend = backend;
    }

    fn loopback(&self) -> bool {
        self.state.mcr & MCR_LOOP != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.state.fifo_enabled {
            FIFO_SIZE
        } else {
            1
        }
    }

    fn trigger_level(&self) -> usize {
        match self.state.rx_trigger & 3 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    fn word_mask(&self) -> u8 {
        (0xffu16 >> (3 - (self.state.lcr & 3))) as u8
    }

    /// Time to send or receive one character with the current divisor and line format.
    fn char_time_ns(&self) -> u64 {
        let lcr = self.state.lcr;
        let data = 5 + u64::from(lcr & 3);
        let parity = u64::from(lcr >> 3 & 1);
        let stop = 1 + u64::from(lcr >> 2 & 1);
        let divisor = u64::from(self.state.divisor.max(1));
        (1 + data + parity + stop) * divisor * 1_000_000_000 / BASE_BAUD
    }

    fn poll_period_ns(&self) -> u64 {
        (self.char_time_ns() * self.rx_capacity() as u64).clamp(POLL_MIN_NS, POLL_MAX_NS)
    }

    /// MSR bits 7-4: the modem inputs, or in loopback the MCR outputs wired back.
    fn modem_inputs(&self) -> u8 {
        let mcr = self.state.mcr;
        if mcr & MCR_LOOP == 0 {
            return MSR_CTS | MSR_DSR | MSR_DCD;
        }
        let wire = |out: u8, input: u8| if mcr & out != 0 { input } else { 0 };
        wire(MCR_RTS, MSR_CTS)
            | wire(MCR_DTR, MSR_DSR)
            | wire(MCR_OUT1, MSR_RI)
            | wire(MCR_OUT2, MSR_DCD)
    }

    fn update_modem_status(&mut self) {
        let new = self.modem_inputs();
        let old = self.state.modem_status;
        let changed = old ^ new;
        let mut deltas = 0;
        if changed & MSR_CTS != 0 {
            deltas |= 0x01;
        }
        if changed & MSR_DSR != 0 {
            deltas |= 0x02;
        }
        if old & MSR_RI != 0 && new & MSR_RI == 0 {
            deltas |= 0x04; // trailing edge of ring indicator
        }
        if changed & MSR_DCD != 0 {
            deltas |= 0x08;
        }
        self.state.modem_deltas |= deltas;
        self.state.modem_status = new;
    }

    /// The interrupt the IIR reports now, by priority.
    fn interrupt_id(&self) -> Option<u8> {
        let s = &self.state;
        let rx_ready = if s.fifo_enabled {
            s.rx_fifo.len() >= self.trigger_level()
        } else {
            !s.rx_fifo.is_empty()
        };
        if s.ier & IER_LINE != 0 && s.line_errors & LSR_ERRORS != 0 {
            Some(IIR_LINE)
        } else if s.ier & IER_RX != 0 && rx_ready {
            Some(IIR_RX)
        } else if s.ier & IER_RX != 0 && s.timeout_pending {
            Some(IIR_TIMEOUT)
        } else if s.ier & IER_THRE != 0 && s.thre_pending {
            Some(IIR_THRE)
        } else if s.ier & IER_MODEM != 0 && s.modem_deltas & 0x0f != 0 {
            Some(IIR_MODEM)
        } else {
            None
        }
    }

    /// The PC's IRQ line: the INTR output gated by the OUT2 pin.
    fn irq_line(&self) -> bool {
        self.interrupt_id().is_some() && self.state.mcr & (MCR_OUT2 | MCR_LOOP) == MCR_OUT2
    }

    fn wants_poll(&self) -> bool {
        self.state.ier & IER_RX != 0
            && !self.loopback()
            && self.state.rx_fifo.len() < self.rx_capacity()
            && self.backend.has_input()
    }

    /// A character arrives in the receiver.
    fn receive(&mut self, byte: u8, now: u64) {
        if self.state.rx_fifo.len() >= self.rx_capacity() {
            self.state.line_errors |= LSR_OE;
            if !self.state.fifo_enabled {
                // 16450 mode: the new character overwrites the unread one.
                self.state.rx_fifo.pop_front();
                self.state.rx_fifo.push_back(byte);
            }
        } else {
            self.state.rx_fifo.push_back(byte);
        }
        self.restart_timeout(now);
    }

    fn restart_timeout(&mut self, now: u64) {
        self.state.timeout_at_ns = (self.state.fifo_enabled && !self.state.rx_fifo.is_empty())
            .then(|| now.saturating_add(4 * self.char_time_ns()));
    }

    /// Fill the receiver from the backend as far as it has room.
    fn pull_input(&mut self, now: u64) {
        if self.loopback() {
            return;
        }
        while self.state.rx_fifo.len() < self.rx_capacity() {
            match self.backend.read() {
                Some(byte) => self.receive(byte, now),
                None => break,
            }
        }
    }

    fn transmit(&mut self, byte: u8, now: u64) {
        let byte = byte & self.word_mask();
        if self.loopback() {
            self.receive(byte, now);
        } else {
            self.backend.write(&[byte]);
            if byte == b'\n' {
                self.backend.flush();
            }
        }
        // Instant transmission: THR (and the shift register) are empty again.
        self.state.thre_pending = true;
    }

    fn write_fcr(&mut self, value: u8) {
        let enable = value & 0x01 != 0;
        if enable != self.state.fifo_enabled || (enable && value & 0x02 != 0) {
            self.state.rx_fifo.clear();
            self.state.timeout_pending = false;
            self.state.timeout_at_ns = None;
        }
        self.state.fifo_enabled = enable;
        self.state.rx_trigger = if enable { value >> 6 } else { 0 };
        self.state.dma_mode = enable && value & 0x08 != 0;
    }

    fn write_ier(&mut self, value: u8) {
        let old = self.state.ier;
        self.state.ier = value & 0x0f;
        if self.state.ier & IER_THRE != 0 && old & IER_THRE == 0 {
            self.state.thre_pending = true;
        }
    }

    fn read_rbr(&mut self, now: u64) -> u8 {
        let byte = self.state.rx_fifo.pop_front().unwrap_or(0);
        self.state.timeout_pending = false;
        self.restart_timeout(now);
        self.pull_input(now);
        byte
    }

    fn read_iir(&mut self) -> u8 {
        let id = self.interrupt_id();
        if id == Some(IIR_THRE) {
            self.state.thre_pending = false;
        }
        let fifo = if self.state.fifo_enabled { IIR_FIFO } else { 0 };
        id.unwrap_or(IIR_NONE) | fifo
    }

    fn read_lsr(&mut self, now: u64) -> u8 {
        self.pull_input(now);
        let dr = if self.state.rx_fifo.is_empty() {
            0
        } else {
            LSR_DR
        };
        let value = dr | self.state.line_errors | LSR_THRE | LSR_TEMT;
        self.state.line_errors = 0;
        value
    }

    fn read_register(&mut self, offset: u16, now: u64) -> u8 {
        let dlab = self.state.lcr & LCR_DLAB != 0;
        match offset {
            0 if dlab => self.state.divisor as u8,
            0 => self.read_rbr(now),
            1 if dlab => (self.state.divisor >> 8) as u8,
            1 => self.state.ier,
            2 => self.read_iir(),
            3 => self.state.lcr,
            4 => self.state.mcr,
            5 => self.read_lsr(now),
            6 => {
                let value = self.state.modem_status | self.state.modem_deltas;
                self.state.modem_deltas = 0;
                value
            }
            7 => self.state.scr,
            _ => 0xff,
        }
    }

    fn write_register(&mut self, offset: u16, value: u8, now: u64) {
        let dlab = self.state.lcr & LCR_DLAB != 0;
        match offset {
            0 if dlab => self.state.divisor = (self.state.divisor & 0xff00) | u16::from(value),
            0 => self.transmit(value, now),
            1 if dlab => {
                self.state.divisor = (self.state.divisor & 0x00ff) | (u16::from(value) << 8);
            }
            1 => self.write_ier(value),
            2 => self.write_fcr(value),
            3 => self.state.lcr = value,
            4 => {
                self.state.mcr = value & 0x1f;
                self.update_modem_status();
            }
            7 => self.state.scr = value,
            _ => {} // LSR and MSR are read-only
        }
    }

    /// After any change: keep the poll timer and the IRQ line in step with the registers.
    fn update(&mut self, ctx: &mut dyn DeviceContext) {
        let now = ctx.now_ns();
        if !self.wants_poll() {
            self.state.poll_at_ns = None;
        } else if self.state.poll_at_ns.is_none() {
            self.state.poll_at_ns = Some(now.saturating_add(self.poll_period_ns()));
        }
        let level = self.irq_line();
        if level != self.state.irq_level {
            self.state.irq_level = level;
            ctx.set_irq(self.irq, level);
        }
    }

    fn offset(&self, port: u16) -> Option<u16> {
        let offset = port.wrapping_sub(self.base);
        (offset < 8).then_some(offset)
    }
}

impl Snapshot for Uart {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: UartState = restore_state(STATE_VERSION, bytes)?;
        if state.rx_fifo.len() > FIFO_SIZE {
            return Err(StateError::Decode(format!(
                "{} bytes in a {FIFO_SIZE}-byte FIFO",
                state.rx_fifo.len()
            )));
        }
        self.state = state;
        Ok(())
    }
}

impl Device for Uart {
    fn name(&self) -> &str {
        &self.name
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(self.base, 8)]
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let now = ctx.now_ns();
        let value = read_bytewise(port, size, |p| match self.offset(p) {
            Some(offset) => self.read_register(offset, now),
            None => 0xff,
        });
        self.update(ctx);
        value
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        let now = ctx.now_ns();
        write_bytewise(port, size, value, |p, byte| {
            if let Some(offset) = self.offset(p) {
                self.write_register(offset, byte, now);
            }
        });
        self.update(ctx);
    }

    fn reset(&mut self) {
        // The IRQ line's level belongs to the board: keep it, and let the next timer call
        // lower it if it was high.
        let level = self.state.irq_level;
        self.state = UartState::default();
        self.state.irq_level = level;
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        if self.irq_line() != self.state.irq_level {
            return Some(0);
        }
        let timeout = self
            .state
            .timeout_at_ns
            .filter(|_| !self.state.timeout_pending && !self.state.rx_fifo.is_empty());
        [timeout, self.state.poll_at_ns].into_iter().flatten().min()
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        let now = ctx.now_ns();
        if self.state.timeout_at_ns.is_some_and(|t| t <= now) {
            self.state.timeout_at_ns = None;
            if self.state.fifo_enabled && !self.state.rx_fifo.is_empty() {
                self.state.timeout_pending = true;
            }
        }
        if self.state.poll_at_ns.is_some_and(|t| t <= now) {
            self.state.poll_at_ns = None;
            self.pull_input(now);
        }
        self.update(ctx);
    }
}
