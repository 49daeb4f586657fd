//! Intel 8042 keyboard controller (ports 0x60/0x64) with a PS/2 keyboard (IRQ1) and a PS/2
//! mouse (IRQ12) behind it, and the A20 gate and CPU reset lines of its output port.
//!
//! Port 0x64 reads the status register and takes controller commands; port 0x60 reads the
//! output buffer and writes either a command's argument or a byte for the keyboard. The one
//! output buffer is shared: controller replies go first, then keyboard bytes (translated from
//! set 2 to set 1 when the command byte's XLAT bit is set), then mouse bytes, each only while
//! its interface clock is enabled. IRQ1/IRQ12 follow the buffer when the command byte enables
//! them; reading a byte lowers the line before the next byte raises it again, so the
//! edge-triggered PIC sees one edge per byte.
//!
//! The host drives the devices with [`I8042::key_event`], [`I8042::mouse_event`] and
//! [`I8042::type_text`]; those queue events that the next timer call delivers, so they need no
//! machine context.
//!
//! Outputs the machine must follow:
//! - **CPU reset** (command 0xFE, any pulse 0xF0-0xFF with bit 0 clear, or output port bit 0
//!   written 0) is requested with `ExitRequest::Reset`.
//! - **A20** is output port bit 1, read with [`I8042::a20`]. When it changes the device calls
//!   `DeviceContext::remap`; the machine then reads `a20()` again. After [`Device::reset`] A20
//!   is enabled again.

mod keyboard;
mod keys;
mod mouse;
#[cfg(test)]
mod tests;

pub use keyboard::KeyboardState;
pub use keys::{break_codes, make_codes, translate, us_layout, Key};
pub use mouse::{buttons, MouseState};

use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, ConfigError, Device, DeviceConfig,
    DeviceContext, ExitRequest, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Version of [`I8042State`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// Keyboard interrupt line.
pub const IRQ_KBD: u8 = 1;
/// Mouse (auxiliary device) interrupt line.
pub const IRQ_AUX: u8 = 12;

/// Data port and status/command port.
pub const DATA_PORT: u16 = 0x60;
pub const COMMAND_PORT: u16 = 0x64;

/// Virtual time between two keystroke events queued by [`I8042::type_text`].
pub const TYPE_INTERVAL_NS: u64 = 5_000_000;

/// Host events waiting beyond this are dropped: the guest is not reading its keyboard.
const HOST_QUEUE_CAPACITY: usize = 4096;

/// Command byte bits.
pub mod ccb {
    pub const KBD_IRQ: u8 = 0x01;
    pub const AUX_IRQ: u8 = 0x02;
    pub const SYSTEM_FLAG: u8 = 0x04;
    pub const KBD_DISABLED: u8 = 0x10;
    pub const AUX_DISABLED: u8 = 0x20;
    pub const XLAT: u8 = 0x40;
}

/// Status register bits.
pub mod status {
    pub const OBF: u8 = 0x01;
    pub const IBF: u8 = 0x02;
    pub const SYSTEM_FLAG: u8 = 0x04;
    /// The last write went to the command port.
    pub const COMMAND: u8 = 0x08;
    /// Keyboard not inhibited (the key lock switch is open).
    pub const UNLOCKED: u8 = 0x10;
    /// The output buffer holds a byte from the mouse.
    pub const AUX_OBF: u8 = 0x20;
    pub const TIMEOUT: u8 = 0x40;
    pub const PARITY: u8 = 0x80;
}

/// Output port bits.
pub mod output_port {
    /// Low pulses reset the CPU.
    pub const RESET: u8 = 0x01;
    pub const A20: u8 = 0x02;
    /// Reads back the IRQ1 line (keyboard byte in the output buffer).
    pub const KBD_OBF: u8 = 0x10;
    /// Reads back the IRQ12 line (mouse byte in the output buffer).
    pub const AUX_OBF: u8 = 0x20;
}

/// Command byte at power-on: both interrupts, translation, mouse clock off (as Bochs).
const POWER_ON_CCB: u8 = ccb::KBD_IRQ | ccb::AUX_IRQ | ccb::AUX_DISABLED | ccb::XLAT;
/// Output port at power-on: reset line high, A20 on, keyboard clock and data lines high.
const POWER_ON_OUTPUT_PORT: u8 = 0xcf;
/// Input port: keyboard not inhibited, colour display.
const INPUT_PORT: u8 = 0x80;

/// Plugin descriptor (no options).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "i8042",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(I8042::new()))
}

/// A byte in the controller's output buffer and the port it is reported for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputByte {
    pub value: u8,
    /// From (or on behalf of) the mouse: AUX_OBF and IRQ12 instead of IRQ1.
    pub aux: bool,
}

/// An input event from the host, waiting to reach the devices.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostEvent {
    /// A key went down or up; `paced` events come from [`I8042::type_text`] and wait for the
    /// keyboard to be idle, one per [`TYPE_INTERVAL_NS`].
    Key {
        key: Key,
        pressed: bool,
        paced: bool,
    },
    /// Mouse movement and buttons, as [`I8042::mouse_event`] takes them.
    Mouse {
        dx: i32,
        dy: i32,
        dz: i32,
        buttons: u8,
    },
}

/// Guest-visible state of the controller and its two devices.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct I8042State {
    /// The controller's 32 bytes of RAM; byte 0 is the command byte (see [`ccb`]).
    pub ram: [u8; 32],
    /// The output buffer (OBF set while it holds a byte).
    pub output: Option<OutputByte>,
    /// The last byte read from port 0x60 (read again while the buffer is empty).
    pub last_output: u8,
    /// Controller replies not yet in the output buffer.
    pub replies: VecDeque<OutputByte>,
    /// A controller command waiting for its data byte on port 0x60.
    pub pending_command: Option<u8>,
    /// The last write went to port 0x64 (status bit 3).
    pub last_write_was_command: bool,
    /// The output port (see [`output_port`]); bits 4-5 are computed when read.
    pub output_port: u8,
    /// Translation saw 0xF0: the next keyboard byte is a break code.
    pub xlat_break: bool,
    /// Levels last driven on IRQ1 and IRQ12.
    pub irq_kbd: bool,
    pub irq_aux: bool,
    pub keyboard: KeyboardState,
    pub mouse: MouseState,
    /// Host input not yet delivered to the devices.
    pub host_events: VecDeque<HostEvent>,
    /// Virtual time (ns) before which no further paced keystroke is delivered.
    pub next_typed_ns: u64,
}

impl Default for I8042State {
    fn default() -> Self {
        let mut ram = [0; 32];
        ram[0] = POWER_ON_CCB;
        Self {
            ram,
            output: None,
            last_output: 0,
            replies: VecDeque::new(),
            pending_command: None,
            last_write_was_command: false,
            output_port: POWER_ON_OUTPUT_PORT,
            xlat_break: false,
            irq_kbd: false,
            irq_aux: false,
            keyboard: KeyboardState::default(),
            mouse: MouseState::default(),
            host_events: VecDeque::new(),
            next_typed_ns: 0,
        }
    }
}

/// A character [`I8042::type_text`] cannot type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("character {0:?} has no key on a US keyboard")]
pub struct UntypableChar(pub char);

/// The 8042 keyboard controller with its keyboard and mouse.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_i8042::{I8042, Key};
///
/// let mut kbc = I8042::new();
/// let mut ctx = FakeContext::new();
/// kbc.key_event(Key::A, true);
/// ctx.run_until(&mut kbc, 0);
/// assert!(ctx.irq(1));
/// assert_eq!(kbc.io_read(0x64, 1, &mut ctx) & 1, 1); // output buffer full
/// assert_eq!(kbc.io_read(0x60, 1, &mut ctx), 0x1e); // "A" pressed, translated to set 1
/// assert!(kbc.a20());
/// ```
pub struct I8042 {
    state: I8042State,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// A controller in its power-on state: keyboard enabled, mouse interface disabled.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: I8042State::default(),
        }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &I8042State {
        &self.state
    }

    /// The A20 gate (output port bit 1). See the crate documentation for how the machine
    /// learns of changes.
    #[must_use]
    pub fn a20(&self) -> bool {
        self.state.output_port & output_port::A20 != 0
    }

    /// The keyboard LEDs the guest set: bit 0 Scroll Lock, bit 1 Num Lock, bit 2 Caps Lock.
    #[must_use]
    pub fn leds(&self) -> u8 {
        self.state.keyboard.leds
    }

    /// Host input events not yet delivered.
    #[must_use]
    pub fn pending_host_events(&self) -> usize {
        self.state.host_events.len()
    }

    /// A key pressed or released on the host. Delivered at the next timer call.
    pub fn key_event(&mut self, key: Key, pressed: bool) {
        self.push_host_event(HostEvent::Key {
            key,
            pressed,
            paced: false,
        });
    }

    /// Mouse movement and buttons from the host: `dx` positive right, `dy` positive down,
    /// `dz` positive for the wheel turned away from the user; `buttons` as in [`buttons`].
    pub fn mouse_event(&mut self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        self.push_host_event(HostEvent::Mouse {
            dx,
            dy,
            dz,
            buttons,
        });
    }

    /// Type `text` on a US keyboard: each character becomes key presses and releases (with
    /// Shift where needed), delivered one event per [`TYPE_INTERVAL_NS`] while the keyboard has
    /// nothing else to send. `\n` is Enter. Nothing is queued if a character has no key.
    pub fn type_text(&mut self, text: &str) -> Result<(), UntypableChar> {
        let strokes = text
            .chars()
            .map(|c| us_layout(c).ok_or(UntypableChar(c)))
            .collect::<Result<Vec<_>, _>>()?;
        for (key, shift) in strokes {
            let mut events = vec![(key, true), (key, false)];
            if shift {
                events.insert(0, (Key::ShiftLeft, true));
                events.push((Key::ShiftLeft, false));
            }
            for (key, pressed) in events {
                self.push_host_event(HostEvent::Key {
                    key,
                    pressed,
                    paced: true,
                });
            }
        }
        Ok(())
    }

    fn push_host_event(&mut self, event: HostEvent) {
        if self.state.host_events.len() < HOST_QUEUE_CAPACITY {
            self.state.host_events.push_back(event);
        }
    }

    fn ccb(&self) -> u8 {
        self.state.ram[0]
    }

    fn status(&self) -> u8 {
        let mut s = status::UNLOCKED | (self.ccb() & status::SYSTEM_FLAG);
        if let Some(out) = self.state.output {
            s |= status::OBF;
            if out.aux {
                s |= status::AUX_OBF;
            }
        }
        if self.state.last_write_was_command {
            s |= status::COMMAND;
        }
        s
    }

    fn reply(&mut self, value: u8, aux: bool) {
        // Replies are few (one or two per command); bound them against a command storm.
        if self.state.replies.len() < 16 {
            self.state.replies.push_back(OutputByte { value, aux });
        }
    }

    /// Move the next byte into an empty output buffer.
    fn refill(&mut self) {
        let s = &mut self.state;
        if s.output.is_some() {
            return;
        }
        if let Some(reply) = s.replies.pop_front() {
            s.output = Some(reply);
            return;
        }
        let ccb = s.ram[0];
        if ccb & ccb::KBD_DISABLED == 0 {
            while let Some(byte) = s.keyboard.pop() {
                let value = if ccb & ccb::XLAT == 0 {
                    byte
                } else if byte == 0xf0 {
                    s.xlat_break = true;
                    continue;
                } else {
                    translate(byte)
                        | if std::mem::take(&mut s.xlat_break) {
                            0x80
                        } else {
                            0
                        }
                };
                s.output = Some(OutputByte { value, aux: false });
                return;
            }
        }
        if ccb & ccb::AUX_DISABLED == 0 {
            if let Some(value) = s.mouse.pop() {
                s.output = Some(OutputByte { value, aux: true });
            }
        }
    }

    fn update_irqs(&mut self, ctx: &mut dyn DeviceContext) {
        let ccb = self.ccb();
        let (kbd, aux) = match self.state.output {
            Some(o) => (
                !o.aux && ccb & ccb::KBD_IRQ != 0,
                o.aux && ccb & ccb::AUX_IRQ != 0,
            ),
            None => (false, false),
        };
        if kbd != self.state.irq_kbd {
            self.state.irq_kbd = kbd;
            ctx.set_irq(IRQ_KBD, kbd);
        }
        if aux != self.state.irq_aux {
            self.state.irq_aux = aux;
            ctx.set_irq(IRQ_AUX, aux);
        }
    }

    /// Refill the output buffer and drive the IRQ lines after anything changed.
    fn settle(&mut self, ctx: &mut dyn DeviceContext) {
        self.update_irqs(ctx);
        self.refill();
        self.update_irqs(ctx);
    }

    fn read_data(&mut self) -> u8 {
        if let Some(out) = self.state.output.take() {
            self.state.last_output = out.value;
        }
        self.state.last_output
    }

    fn output_port_value(&self) -> u8 {
        let mut v = self.state.output_port & !(output_port::KBD_OBF | output_port::AUX_OBF);
        if self.state.irq_kbd {
            v |= output_port::KBD_OBF;
        }
        if self.state.irq_aux {
            v |= output_port::AUX_OBF;
        }
        v
    }

    fn write_output_port(&mut self, value: u8, ctx: &mut dyn DeviceContext) {
        let old = self.state.output_port;
        self.state.output_port = value;
        if (old ^ value) & output_port::A20 != 0 {
            ctx.remap();
        }
        if value & output_port::RESET == 0 {
            // The line is pulsed rather than held: the CPU comes out of reset at once.
            self.state.output_port |= output_port::RESET;
            ctx.request_exit(ExitRequest::Reset);
        }
    }

    fn set_a20(&mut self, on: bool, ctx: &mut dyn DeviceContext) {
        let v = self.state.output_port & !output_port::A20;
        self.write_output_port(v | if on { output_port::A20 } else { 0 }, ctx);
    }

    fn controller_command(&mut self, command: u8, ctx: &mut dyn DeviceContext) {
        let ram = &mut self.state.ram;
        match command {
            0x20..=0x3f => {
                let value = ram[usize::from(command & 0x1f)];
                self.reply(value, false);
            }
            0x60..=0x7f | 0xa5 | 0xd1..=0xd4 => self.state.pending_command = Some(command),
            0xa4 => self.reply(0xf1, false), // no password installed
            0xa7 => ram[0] |= ccb::AUX_DISABLED,
            0xa8 => ram[0] &= !ccb::AUX_DISABLED,
            0xa9 | 0xab => self.reply(0x00, false), // interface tests pass
            0xaa => {
                ram[0] |= ccb::SYSTEM_FLAG;
                self.reply(0x55, false);
            }
            0xad => ram[0] |= ccb::KBD_DISABLED,
            0xae => ram[0] &= !ccb::KBD_DISABLED,
            0xc0 => self.reply(INPUT_PORT, false),
            0xd0 => {
                let v = self.output_port_value();
                self.reply(v, false);
            }
            0xdd => self.set_a20(false, ctx),
            0xdf => self.set_a20(true, ctx),
            0xe0 => self.reply(0x00, false), // test inputs
            // Pulse output lines: bit 0 clear pulses the CPU reset line.
            0xf0..=0xff if command & 1 == 0 => ctx.request_exit(ExitRequest::Reset),
            _ => {} // vendor commands: ignored
        }
    }

    fn controller_data(&mut self, command: u8, value: u8, ctx: &mut dyn DeviceContext) {
        match command {
            0x60..=0x7f => self.state.ram[usize::from(command & 0x1f)] = value,
            0xa5 => {
                // Password bytes run up to a zero.
                if value != 0 {
                    self.state.pending_command = Some(0xa5);
                }
            }
            0xd1 => self.write_output_port(value, ctx),
            0xd2 => self.reply(value, false),
            0xd3 => self.reply(value, true),
            _ => self.state.mouse.receive(value),
        }
    }

    fn write_port(&mut self, port: u16, value: u8, ctx: &mut dyn DeviceContext) {
        match port {
            DATA_PORT => {
                self.state.last_write_was_command = false;
                match self.state.pending_command.take() {
                    Some(command) => self.controller_data(command, value, ctx),
                    None => self.state.keyboard.receive(value),
                }
            }
            COMMAND_PORT => {
                self.state.last_write_was_command = true;
                self.state.pending_command = None;
                self.controller_command(value, ctx);
            }
            _ => {}
        }
        self.settle(ctx);
    }

    fn read_port(&mut self, port: u16, ctx: &mut dyn DeviceContext) -> u8 {
        match port {
            DATA_PORT => {
                let value = self.read_data();
                self.settle(ctx);
                value
            }
            COMMAND_PORT => self.status(),
            _ => 0xff,
        }
    }

    /// Whether a paced keystroke may go now: the keyboard has sent everything before it.
    fn keyboard_idle(&self) -> bool {
        let s = &self.state;
        s.keyboard.scanning && s.keyboard.queue.is_empty() && s.output.is_none_or(|o| o.aux)
    }

    fn deliver_host_events(&mut self, now: u64) {
        while let Some(&event) = self.state.host_events.front() {
            match event {
                HostEvent::Key {
                    key,
                    pressed,
                    paced,
                } => {
                    if paced {
                        if now < self.state.next_typed_ns {
                            return;
                        }
                        if !self.keyboard_idle() {
                            self.state.next_typed_ns = now.saturating_add(TYPE_INTERVAL_NS);
                            return;
                        }
                        self.state.next_typed_ns = now.saturating_add(TYPE_INTERVAL_NS);
                    }
                    self.state.keyboard.key(key, pressed, now);
                }
                HostEvent::Mouse {
                    dx,
                    dy,
                    dz,
                    buttons,
                } => self.state.mouse.motion(dx, dy, dz, buttons),
            }
            self.state.host_events.pop_front();
        }
    }
}

impl Snapshot for I8042 {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: I8042State = restore_state(STATE_VERSION, bytes)?;
        if !(1..=3).contains(&state.keyboard.scan_set) {
            return Err(StateError::Decode(format!(
                "scan code set {} does not exist",
                state.keyboard.scan_set
            )));
        }
        self.state = state;
        Ok(())
    }
}

impl Device for I8042 {
    fn name(&self) -> &str {
        "i8042"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![
            PortRange::new(DATA_PORT, 1),
            PortRange::new(COMMAND_PORT, 1),
        ]
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        read_bytewise(port, size, |p| self.read_port(p, ctx))
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        write_bytewise(port, size, value, |p, b| self.write_port(p, b, ctx));
    }

    /// Power-on state. Host input not yet delivered is dropped; the IRQ lines are lowered at
    /// the next timer call.
    fn reset(&mut self) {
        let (irq_kbd, irq_aux) = (self.state.irq_kbd, self.state.irq_aux);
        self.state = I8042State {
            irq_kbd,
            irq_aux,
            ..I8042State::default()
        };
    }

    /// For the machine's typed access to the inherent API (input, A20, display).
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        let s = &self.state;
        if s.irq_kbd || s.irq_aux {
            // A line left high by reset() with nothing to report: lower it now.
            if s.output.is_none() {
                return Some(0);
            }
        }
        let host = s.host_events.front().map(|e| match e {
            HostEvent::Key { paced: true, .. } => s.next_typed_ns,
            _ => 0,
        });
        [host, s.keyboard.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        let now = ctx.now_ns();
        self.deliver_host_events(now);
        self.state.keyboard.tick(now);
        self.settle(ctx);
    }
}
