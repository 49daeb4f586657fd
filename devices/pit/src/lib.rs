//! Intel 8254 programmable interval timer (ports 0x40-0x43) and the PC's system control
//! port B (0x61).
//!
//! Three counters run from the 1.193182 MHz clock, in all six modes, binary or BCD, with the
//! counter latch and read-back commands and the LSB/MSB/LSB-then-MSB access flip-flops. The
//! counting elements are computed in closed form from virtual time: the device does no work per
//! clock tick and asks for a timer only at the edges of counter 0's output, which drives IRQ0.
//!
//! Port 0x61: bit 0 is counter 2's GATE, bit 1 enables the speaker, bits 2-3 are stored,
//! bit 4 toggles with each DRAM refresh (every 18 clocks, about 15 us, which guests use for
//! delays) and bit 5 reads counter 2's OUT.

mod channel;
#[cfg(test)]
mod tests;

pub use channel::{Access, ChannelState, Phase};

use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, ConfigError, Device, DeviceConfig,
    DeviceContext, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`PitState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// The 8254's input clock on a PC, in Hz.
pub const CLOCK_HZ: u64 = 1_193_182;

/// Clocks between two DRAM refresh requests (counter 1 as every BIOS programs it).
const REFRESH_CLOCKS: u64 = 18;

/// IRQ line driven by counter 0.
pub const IRQ: u8 = 0;

/// Plugin descriptor (no options).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "pit8254",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(Pit::new()))
}

/// Clock ticks elapsed at virtual time `ns`.
#[must_use]
pub fn ns_to_ticks(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(CLOCK_HZ) / 1_000_000_000) as u64
}

/// The earliest virtual time at which `ticks` clock ticks have elapsed.
#[must_use]
pub fn ticks_to_ns(ticks: u64) -> u64 {
    let ns = (u128::from(ticks) * 1_000_000_000).div_ceil(u128::from(CLOCK_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Guest-visible state of the timer and port 0x61.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PitState {
    pub counter0: ChannelState,
    pub counter1: ChannelState,
    pub counter2: ChannelState,
    /// Port 0x61 bit 1: speaker data enable.
    pub speaker_enable: bool,
    /// Port 0x61 bit 2 as written (parity check disable on the AT).
    pub parity_check_disable: bool,
    /// Port 0x61 bit 3 as written (channel check disable on the AT).
    pub channel_check_disable: bool,
    /// Level last driven on IRQ0.
    pub irq0_level: bool,
    /// Counter 0's output edges up to this tick have been sent to IRQ0.
    pub irq0_checked_tick: u64,
}

impl Default for PitState {
    fn default() -> Self {
        Self {
            counter0: ChannelState::default(),
            counter1: ChannelState::default(),
            counter2: ChannelState {
                gate: false,
                ..ChannelState::default()
            },
            speaker_enable: false,
            parity_check_disable: false,
            channel_check_disable: false,
            irq0_level: false,
            irq0_checked_tick: 0,
        }
    }
}

/// What reaches the PC speaker: counter 2's OUT, passed on while port 0x61 bit 1 is set.
/// A copy of the counter is enough to know the level at any later tick until the guest
/// changes something, when the PIT sends a new one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SpeakerInput {
    pub counter2: ChannelState,
    /// Port 0x61 bit 1.
    pub enabled: bool,
}

impl Default for SpeakerInput {
    fn default() -> Self {
        Self {
            counter2: PitState::default().counter2,
            enabled: false,
        }
    }
}

/// The wire from counter 2 and port 0x61 to the speaker (a separate device model).
pub trait SpeakerLine: Send {
    /// From virtual time `now_ns` on, the speaker hears `input`.
    fn changed(&mut self, now_ns: u64, input: &SpeakerInput);
}

/// The 8254 timer with port 0x61.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_pit::Pit;
///
/// let mut pit = Pit::new();
/// let mut ctx = FakeContext::new();
/// // Counter 0, LSB then MSB, mode 2, count 1193: about 1 kHz on IRQ0.
/// pit.io_write(0x43, 1, 0x34, &mut ctx);
/// pit.io_write(0x40, 1, 1193 & 0xff, &mut ctx);
/// pit.io_write(0x40, 1, 1193 >> 8, &mut ctx);
/// ctx.clear_events();
/// ctx.run_until(&mut pit, 10_000_000);
/// assert_eq!(ctx.rising_edges(0), 10);
/// ```
pub struct Pit {
    state: PitState,
    speaker: Option<Box<dyn SpeakerLine>>,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// A timer in its power-on state.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: PitState::default(),
            speaker: None,
        }
    }

    /// Wire counter 2 and port 0x61 to a speaker; it hears every change from now on.
    pub fn connect_speaker(&mut self, line: Box<dyn SpeakerLine>) {
        self.speaker = Some(line);
    }

    /// What the speaker hears now.
    #[must_use]
    pub fn speaker_input(&self) -> SpeakerInput {
        SpeakerInput {
            counter2: self.state.counter2.clone(),
            enabled: self.state.speaker_enable,
        }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &PitState {
        &self.state
    }

    /// Frequency in Hz of the tone the PC speaker plays now: counter 2 producing a periodic
    /// wave (mode 3, or 2) with its gate and the speaker enabled in port 0x61. `None` when the
    /// speaker is silent or driven some other way.
    #[must_use]
    pub fn speaker_frequency_hz(&self) -> Option<f64> {
        let c2 = &self.state.counter2;
        if !(c2.gate && self.state.speaker_enable) {
            return None;
        }
        c2.wave_frequency(CLOCK_HZ as f64)
    }

    fn counter(&mut self, index: u16) -> Option<&mut ChannelState> {
        match index {
            0 => Some(&mut self.state.counter0),
            1 => Some(&mut self.state.counter1),
            2 => Some(&mut self.state.counter2),
            _ => None,
        }
    }

    /// Bring the counters up to `now` and drive IRQ0 with counter 0's OUT edges since the
    /// last time.
    fn sync(&mut self, ctx: &mut dyn DeviceContext) {
        let now = ns_to_ticks(ctx.now_ns()).max(self.state.irq0_checked_tick);
        let c0 = &mut self.state.counter0;
        let mut checked = self.state.irq0_checked_tick;
        let mut rose = false;
        if let Some(switch) = c0.next_period_tick.filter(|&p| p <= now) {
            rose |= c0.next_rising(checked).is_some_and(|r| r <= switch);
            checked = switch;
            c0.settle(switch);
        }
        rose |= c0.next_rising(checked).is_some_and(|r| r <= now);
        let level = c0.output(now);
        self.state.irq0_checked_tick = now;
        for index in 0..3 {
            if let Some(c) = self.counter(index) {
                c.settle(now);
            }
        }
        if rose {
            if self.state.irq0_level {
                ctx.set_irq(IRQ, false);
            }
            ctx.set_irq(IRQ, true);
            self.state.irq0_level = true;
        }
        if level != self.state.irq0_level {
            ctx.set_irq(IRQ, level);
            self.state.irq0_level = level;
        }
    }

    fn write_control(&mut self, value: u8, t: u64) {
        let select = value >> 6;
        if select == 3 {
            // Read-back: bit 5 low latches counts, bit 4 low latches status, bits 1-3 select.
            for index in 0..3u16 {
                if value & (2 << index) == 0 {
                    continue;
                }
                if let Some(c) = self.counter(index) {
                    if value & 0x20 == 0 {
                        c.latch_count(t);
                    }
                    if value & 0x10 == 0 {
                        c.latch_status(t);
                    }
                }
            }
            return;
        }
        if let Some(c) = self.counter(u16::from(select)) {
            if value & 0x30 == 0 {
                c.latch_count(t);
            } else {
                c.control(value, t);
            }
        }
    }

    fn read_port61(&self, t: u64) -> u8 {
        u8::from(self.state.counter2.gate)
            | u8::from(self.state.speaker_enable) << 1
            | u8::from(self.state.parity_check_disable) << 2
            | u8::from(self.state.channel_check_disable) << 3
            | (((t / REFRESH_CLOCKS) & 1) as u8) << 4
            | u8::from(self.state.counter2.output(t)) << 5
    }

    fn write_port61(&mut self, value: u8, t: u64) {
        self.state.speaker_enable = value & 0x02 != 0;
        self.state.parity_check_disable = value & 0x04 != 0;
        self.state.channel_check_disable = value & 0x08 != 0;
        self.state.counter2.set_gate(value & 0x01 != 0, t);
    }

    fn read_port(&mut self, port: u16, t: u64) -> u8 {
        match port {
            0x40..=0x42 => self.counter(port - 0x40).map_or(0xff, |c| c.read(t)),
            0x61 => self.read_port61(t),
            _ => 0xff, // 0x43 is write-only
        }
    }

    fn write_port(&mut self, port: u16, value: u8, t: u64) {
        match port {
            0x40..=0x42 => {
                if let Some(c) = self.counter(port - 0x40) {
                    c.write(value, t);
                }
            }
            0x43 => self.write_control(value, t),
            0x61 => self.write_port61(value, t),
            _ => {}
        }
    }
}

impl Snapshot for Pit {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for Pit {
    fn name(&self) -> &str {
        "pit"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(0x40, 4), PortRange::new(0x61, 1)]
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        self.sync(ctx);
        let t = self.state.irq0_checked_tick;
        let value = read_bytewise(port, size, |p| self.read_port(p, t));
        self.sync(ctx);
        value
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        self.sync(ctx);
        let t = self.state.irq0_checked_tick;
        write_bytewise(port, size, value, |p, byte| self.write_port(p, byte, t));
        self.sync(ctx);
        let last = port.wrapping_add(u16::from(size.clamp(1, 4)) - 1);
        let touches_speaker = [0x42, 0x43, 0x61].iter().any(|p| (port..=last).contains(p));
        if touches_speaker && self.speaker.is_some() {
            let input = self.speaker_input();
            if let Some(line) = &mut self.speaker {
                line.changed(ctx.now_ns(), &input);
            }
        }
    }

    fn reset(&mut self) {
        // IRQ0's level and the time already accounted for are facts of the board, not of the
        // chip: keep them so the next timer call lowers IRQ0 if it was high.
        let (level, checked) = (self.state.irq0_level, self.state.irq0_checked_tick);
        self.state = PitState::default();
        self.state.irq0_level = level;
        self.state.irq0_checked_tick = checked;
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        let c0 = &self.state.counter0;
        let t = self.state.irq0_checked_tick;
        if c0.output(t) != self.state.irq0_level {
            return Some(ticks_to_ns(t));
        }
        let falling = if matches!(c0.mode, 0 | 1 | 3) {
            c0.next_falling(t)
        } else {
            None // modes 2, 4, 5: the one-clock low pulse is sent with its rising edge
        };
        [c0.next_rising(t), falling, c0.next_period_tick]
            .into_iter()
            .flatten()
            .min()
            .map(ticks_to_ns)
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        self.sync(ctx);
    }
}
