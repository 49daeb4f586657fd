//! The PC game port at 0x201: two sticks with two axes and two buttons each.
//!
//! Each axis is a potentiometer (0-100 kOhm) charging a capacitor in a 558 quad timer. A write
//! to the port fires all four one-shots; an axis bit reads 1 until its one-shot times out
//! after 24.2 us + 0.011 us per Ohm, and the guest measures the position by counting reads.
//! The durations are fixed at the trigger from the host's stick positions, and compared
//! against virtual time, so a deterministic run reads the same counts every time. Bits 4-7
//! are the buttons, 0 while pressed. A stick that is not connected reads all ones (its
//! one-shots never end), as on a PC with nothing plugged in.
//!
//! The host's sticks arrive through a [`GamepadInput`] handle (a host resource, fed by the
//! frontend from gilrs); they are not part of the saved state.

#[cfg(test)]
mod tests;

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, PluginDescriptor,
    PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};

/// Version of [`GameportState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// The port the game adapter decodes.
pub const PORT: u16 = 0x201;

/// One-shot time at zero resistance, in ns.
const BASE_NS: u64 = 24_200;
/// Extra one-shot time per Ohm, in ns (0.011 us).
const NS_PER_OHM: u64 = 11;
/// Full travel of a stick's potentiometer, in Ohm.
const FULL_SCALE_OHM: u64 = 100_000;

/// Plugin descriptor (no options): a port with no sticks connected until a frontend feeds
/// [`Gameport::input`].
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "gameport",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(Gameport::new(GamepadInput::default())))
}

/// One host stick as the frontend sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stick {
    pub connected: bool,
    /// -1.0 (left/up) ..= 1.0 (right/down).
    pub x: f32,
    pub y: f32,
    pub button1: bool,
    pub button2: bool,
}

impl Stick {
    /// One-shot length for an axis position, in ns.
    #[must_use]
    pub fn axis_ns(position: f32) -> u64 {
        let p = if position.is_finite() {
            position.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let ohm = ((f64::from(p) + 1.0) / 2.0 * FULL_SCALE_OHM as f64).round() as u64;
        BASE_NS + ohm * NS_PER_OHM
    }
}

/// The sticks the host has plugged in, shared between the frontend and the device.
#[derive(Clone, Debug, Default)]
pub struct GamepadInput {
    sticks: Arc<Mutex<[Stick; 2]>>,
}

impl GamepadInput {
    fn lock(&self) -> MutexGuard<'_, [Stick; 2]> {
        self.sticks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replace stick `index` (0 = A, 1 = B; others are ignored).
    pub fn set_stick(&self, index: usize, stick: Stick) {
        if let Some(s) = self.lock().get_mut(index) {
            *s = stick;
        }
    }

    /// Change stick `index` in place.
    pub fn update(&self, index: usize, f: impl FnOnce(&mut Stick)) {
        if let Some(s) = self.lock().get_mut(index) {
            f(s);
        }
    }

    /// Both sticks as they are now.
    #[must_use]
    pub fn sticks(&self) -> [Stick; 2] {
        *self.lock()
    }
}

/// Guest-visible state: when each axis one-shot ends (0: never fired since reset).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct GameportState {
    pub a_x_until_ns: u64,
    pub a_y_until_ns: u64,
    pub b_x_until_ns: u64,
    pub b_y_until_ns: u64,
}

/// The game port.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_gameport::{Gameport, GamepadInput, Stick};
///
/// let input = GamepadInput::default();
/// input.set_stick(0, Stick { connected: true, x: -1.0, y: 1.0, button1: true, ..Stick::default() });
/// let mut port = Gameport::new(input);
/// let mut ctx = FakeContext::new();
/// assert_eq!(port.io_read(0x201, 1, &mut ctx), 0xec); // A's button 1 down, B absent
/// port.io_write(0x201, 1, 0, &mut ctx); // fire the one-shots
/// ctx.now_ns = 100_000; // 100 us: A's X (24.2 us) is done, A's Y (1124 us) is not
/// assert_eq!(port.io_read(0x201, 1, &mut ctx) & 0x03, 0x02);
/// ```
pub struct Gameport {
    state: GameportState,
    input: GamepadInput,
}

impl Gameport {
    #[must_use]
    pub fn new(input: GamepadInput) -> Self {
        Self {
            state: GameportState::default(),
            input,
        }
    }

    /// The handle the frontend feeds with the host's sticks.
    #[must_use]
    pub fn input(&self) -> GamepadInput {
        self.input.clone()
    }

    #[must_use]
    pub fn state(&self) -> &GameportState {
        &self.state
    }

    fn trigger(&mut self, now: u64) {
        let [a, b] = self.input.sticks();
        let until = |stick: &Stick, pos: f32| {
            if stick.connected {
                now.saturating_add(Stick::axis_ns(pos))
            } else {
                u64::MAX
            }
        };
        self.state = GameportState {
            a_x_until_ns: until(&a, a.x),
            a_y_until_ns: until(&a, a.y),
            b_x_until_ns: until(&b, b.x),
            b_y_until_ns: until(&b, b.y),
        };
    }

    fn read(&self, now: u64) -> u8 {
        let [a, b] = self.input.sticks();
        let s = &self.state;
        let axis = |connected: bool, until: u64| !connected || now < until;
        let bits = [
            axis(a.connected, s.a_x_until_ns),
            axis(a.connected, s.a_y_until_ns),
            axis(b.connected, s.b_x_until_ns),
            axis(b.connected, s.b_y_until_ns),
            !(a.connected && a.button1),
            !(a.connected && a.button2),
            !(b.connected && b.button1),
            !(b.connected && b.button2),
        ];
        bits.iter()
            .enumerate()
            .fold(0, |v, (i, &bit)| v | u8::from(bit) << i)
    }
}

impl Snapshot for Gameport {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for Gameport {
    fn name(&self) -> &str {
        "gameport"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(PORT, 1)]
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let now = ctx.now_ns();
        nestor_device::read_bytewise(
            port,
            size,
            |p| if p == PORT { self.read(now) } else { 0xff },
        )
    }

    fn io_write(&mut self, port: u16, size: u8, _value: u32, ctx: &mut dyn DeviceContext) {
        let last = port.wrapping_add(u16::from(size.clamp(1, 4)) - 1);
        if (port..=last).contains(&PORT) {
            self.trigger(ctx.now_ns());
        }
    }

    fn reset(&mut self) {
        self.state = GameportState::default();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
