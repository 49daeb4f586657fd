//! The IA-PC High Precision Event Timer (HPET 1.0a), as in Intel's ICH: a 64-bit main counter
//! at 10 MHz and three timers (periodic capable, 64-bit, 32-bit mode on request), in a 1 KiB
//! window at 0xFED00000.
//!
//! The counter and the comparator matches are computed from virtual time; the device asks for
//! a timer call only at the matches of timers whose interrupt is enabled.
//!
//! Interrupt lines, as passed to `DeviceContext::set_irq`:
//! - legacy replacement (general configuration bit 1): timer 0 drives line 0 (ISA IRQ0, i.e.
//!   8259 IRQ0 and IOAPIC pin 2) and timer 1 line 8 (ISA IRQ8). The machine must then stop
//!   the PIT's IRQ0 and the RTC's IRQ8 from reaching the interrupt controllers: it asks
//!   [`Hpet::legacy_replacement`];
//! - otherwise each timer drives the IOAPIC input its route field names: one of 2, 8 and
//!   20-23 ([`ROUTE_CAP`]). Lines below 16 are also 8259 inputs (2 is the cascade: the 8259
//!   ignores it, the IOAPIC takes it on pin 2).
//!
//! Edge-triggered timers make a fresh rising edge at each match and leave the line high until
//! the next one; level-triggered timers hold their line high until the guest clears the
//! timer's bit in the general interrupt status register.

#[cfg(test)]
mod tests;
mod timer;

pub use timer::{cfg, HpetTimerState};

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, MmioRange,
    PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`HpetState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

pub const DEFAULT_BASE: u64 = 0xfed0_0000;
pub const WINDOW_LEN: u64 = 0x400;

/// Counter tick in femtoseconds: 10 MHz.
pub const PERIOD_FS: u64 = 100_000_000;
/// Number of timers.
pub const TIMERS: usize = 3;
/// IOAPIC inputs each timer may be routed to: 2, 8 and 20-23.
pub const ROUTE_CAP: u64 = 0x00f0_0104;

/// General capabilities and ID: revision 1, three timers, 64-bit counter, legacy
/// replacement capable, vendor Intel, the tick period.
pub const CAPABILITIES: u64 =
    0x01 | ((TIMERS as u64 - 1) << 8) | (1 << 13) | (1 << 15) | (0x8086 << 16) | (PERIOD_FS << 32);

/// Register offsets (64-bit registers; the guest may access either 32-bit half).
pub mod reg {
    pub const CAPABILITIES: u64 = 0x000;
    pub const CONFIG: u64 = 0x010;
    pub const STATUS: u64 = 0x020;
    pub const COUNTER: u64 = 0x0f0;
    /// Timer n's configuration is at `TIMER0 + 0x20 * n`, its comparator 8 bytes after, its
    /// FSB route 16 bytes after.
    pub const TIMER0: u64 = 0x100;
    pub const TIMER_STRIDE: u64 = 0x20;
}

/// General configuration bits.
pub const ENABLE: u64 = 1 << 0;
pub const LEGACY_REPLACEMENT: u64 = 1 << 1;

const NS_PER_TICK_FS: u128 = 1_000_000;

/// Plugin descriptor (no options).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "hpet",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(Hpet::new()))
}

/// Guest-visible state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HpetState {
    /// General configuration (enable, legacy replacement).
    pub config: u64,
    /// General interrupt status: bit n for level-triggered timer n.
    pub status: u64,
    /// The main counter at `counter_base_ns` while running; its value while halted.
    pub counter_base: u64,
    pub counter_base_ns: u64,
    /// Comparator matches up to this counter value have been handled.
    pub checked: u64,
    /// Timer 0 first.
    pub timers: Vec<HpetTimerState>,
}

impl Default for HpetState {
    fn default() -> Self {
        Self {
            config: 0,
            status: 0,
            counter_base: 0,
            counter_base_ns: 0,
            checked: 0,
            timers: vec![HpetTimerState::default(); TIMERS],
        }
    }
}

/// The HPET.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_hpet::{Hpet, DEFAULT_BASE};
///
/// let mut hpet = Hpet::new();
/// let mut ctx = FakeContext::new();
/// let write = |hpet: &mut Hpet, ctx: &mut FakeContext, offset: u64, value: u64| {
///     hpet.mmio_write(DEFAULT_BASE + offset, &value.to_le_bytes(), ctx);
/// };
/// // Timer 0: periodic, interrupt enabled, every 10_000 ticks (1 ms); legacy routing.
/// write(&mut hpet, &mut ctx, 0x100, 0x4c);
/// write(&mut hpet, &mut ctx, 0x108, 10_000);
/// write(&mut hpet, &mut ctx, 0x108, 10_000);
/// write(&mut hpet, &mut ctx, 0x010, 0x3);
/// assert!(hpet.legacy_replacement());
/// ctx.run_until(&mut hpet, 10_000_000);
/// assert_eq!(ctx.rising_edges(0), 10);
/// ```
pub struct Hpet {
    state: HpetState,
}

impl Default for Hpet {
    fn default() -> Self {
        Self::new()
    }
}

impl Hpet {
    /// An HPET in its reset state: halted, counter 0, timers off.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: HpetState::default(),
        }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &HpetState {
        &self.state
    }

    /// Legacy replacement routing is on: the PIT's IRQ0 and the RTC's IRQ8 must not reach the
    /// interrupt controllers (the HPET's timers 0 and 1 drive those lines instead).
    #[must_use]
    pub fn legacy_replacement(&self) -> bool {
        self.state.config & LEGACY_REPLACEMENT != 0
    }

    fn enabled(&self) -> bool {
        self.state.config & ENABLE != 0
    }

    /// The main counter at virtual time `now`.
    #[must_use]
    pub fn counter_at(&self, now: u64) -> u64 {
        if !self.enabled() {
            return self.state.counter_base;
        }
        let ns = u128::from(now.saturating_sub(self.state.counter_base_ns));
        let ticks = ns * NS_PER_TICK_FS / u128::from(PERIOD_FS);
        self.state.counter_base.wrapping_add(ticks as u64)
    }

    /// The virtual time at which the running counter reaches `value`.
    fn time_of(&self, value: u64) -> u64 {
        let ticks = u128::from(value.wrapping_sub(self.state.counter_base));
        let ns = (ticks * u128::from(PERIOD_FS)).div_ceil(NS_PER_TICK_FS);
        self.state
            .counter_base_ns
            .saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The line timer `index` is routed to now (`None`: an unsupported route).
    fn route(&self, index: usize) -> Option<u8> {
        match index {
            0 if self.legacy_replacement() => return Some(0),
            1 if self.legacy_replacement() => return Some(8),
            _ => {}
        }
        let t = self.state.timers.get(index)?;
        let route = ((t.config & cfg::ROUTE_MASK) >> cfg::ROUTE_SHIFT) as u8;
        (ROUTE_CAP & (1 << route) != 0).then_some(route)
    }

    /// The line timer `index` should hold high now.
    fn wanted_line(&self, index: usize) -> Option<u8> {
        let t = self.state.timers.get(index)?;
        if !self.enabled() || !t.is(cfg::INT_ENABLE) {
            return None;
        }
        let route = self.route(index)?;
        let active = if t.is(cfg::LEVEL) {
            self.state.status & (1 << index) != 0
        } else {
            // A route change drops the line without an edge on the new one.
            t.edge_high && (t.driven_line.is_none() || t.driven_line == Some(route))
        };
        active.then_some(route)
    }

    /// Drive every timer's line to what it should be.
    fn update_lines(&mut self, ctx: &mut dyn DeviceContext) {
        for index in 0..self.state.timers.len() {
            let want = self.wanted_line(index);
            let Some(t) = self.state.timers.get_mut(index) else {
                continue;
            };
            t.edge_high = want.is_some() && !t.is(cfg::LEVEL);
            if want != t.driven_line {
                if let Some(old) = t.driven_line {
                    ctx.set_irq(old, false);
                }
                if let Some(new) = want {
                    ctx.set_irq(new, true);
                }
                t.driven_line = want;
            }
        }
    }

    /// Handle the comparator matches up to virtual time `now`, then drive the lines.
    fn sync(&mut self, now: u64, ctx: &mut dyn DeviceContext) {
        if self.enabled() {
            let counter = self.counter_at(now);
            let checked = self.state.checked;
            for index in 0..self.state.timers.len() {
                let Some(matched) = self
                    .state
                    .timers
                    .get(index)
                    .and_then(|t| t.next_match(checked).filter(|&v| v <= counter))
                else {
                    continue;
                };
                self.fire(index, ctx);
                if let Some(t) = self.state.timers.get_mut(index) {
                    t.advance(matched, counter);
                }
            }
            self.state.checked = counter;
        }
        self.update_lines(ctx);
    }

    /// Timer `index` matched: a level-triggered timer sets its status bit (even with its
    /// interrupt disabled); an edge-triggered one pulses its line.
    fn fire(&mut self, index: usize, ctx: &mut dyn DeviceContext) {
        let route = self.route(index);
        let enabled = self.enabled();
        let Some(t) = self.state.timers.get_mut(index) else {
            return;
        };
        if t.is(cfg::LEVEL) {
            self.state.status |= 1 << index;
            return;
        }
        if !enabled || !t.is(cfg::INT_ENABLE) || route.is_none() {
            return;
        }
        match t.driven_line {
            Some(line) if t.edge_high && Some(line) == route => {
                ctx.set_irq(line, false);
                ctx.set_irq(line, true);
            }
            _ => t.edge_high = true,
        }
    }

    /// The 64-bit register at `offset` (8-byte aligned).
    fn read_register(&self, offset: u64, now: u64) -> u64 {
        match offset {
            reg::CAPABILITIES => CAPABILITIES,
            reg::CONFIG => self.state.config,
            reg::STATUS => self.state.status,
            reg::COUNTER => self.counter_at(now),
            _ => {
                let Some((t, field)) = self.timer_field(offset) else {
                    return 0;
                };
                match field {
                    0 => {
                        t.config
                            | cfg::PERIODIC_CAP
                            | cfg::SIZE_CAP
                            | ROUTE_CAP << cfg::ROUTE_CAP_SHIFT
                    }
                    8 => t.comparator_value(),
                    0x10 => t.fsb_route,
                    _ => 0,
                }
            }
        }
    }

    fn timer_field(&self, offset: u64) -> Option<(&HpetTimerState, u64)> {
        let rel = offset.checked_sub(reg::TIMER0)?;
        let t = self.state.timers.get((rel / reg::TIMER_STRIDE) as usize)?;
        Some((t, rel % reg::TIMER_STRIDE))
    }

    /// Write the bytes of `value` selected by `mask` into the register at `offset`.
    fn write_register(&mut self, offset: u64, value: u64, mask: u64, now: u64) {
        let merge = |old: u64| (old & !mask) | (value & mask);
        match offset {
            reg::CONFIG => self.write_config(merge(self.state.config), now),
            // Write 1 to clear.
            reg::STATUS => self.state.status &= !(value & mask),
            reg::COUNTER => {
                let v = merge(self.counter_at(now));
                self.state.counter_base = v;
                self.state.counter_base_ns = now;
                self.state.checked = v;
            }
            _ => {
                let Some(rel) = offset.checked_sub(reg::TIMER0) else {
                    return;
                };
                let index = (rel / reg::TIMER_STRIDE) as usize;
                let Some(t) = self.state.timers.get_mut(index) else {
                    return;
                };
                match rel % reg::TIMER_STRIDE {
                    0 => {
                        t.write_config(value, mask);
                        if !t.is(cfg::LEVEL) {
                            self.state.status &= !(1 << index);
                        }
                    }
                    8 => t.write_comparator(value, mask),
                    0x10 => t.fsb_route = (t.fsb_route & !mask) | (value & mask),
                    _ => {}
                }
            }
        }
    }

    fn write_config(&mut self, value: u64, now: u64) {
        let was_enabled = self.enabled();
        let counter = self.counter_at(now);
        self.state.config = value & (ENABLE | LEGACY_REPLACEMENT);
        match (was_enabled, self.enabled()) {
            (false, true) => {
                self.state.counter_base_ns = now;
                self.state.checked = self.state.counter_base;
            }
            (true, false) => self.state.counter_base = counter,
            _ => {}
        }
    }
}

/// The byte mask of an access of `len` bytes at byte `shift` of a 64-bit register.
fn access_mask(shift: usize, len: usize) -> u64 {
    let bytes = len.min(8 - shift.min(8));
    if bytes == 0 {
        return 0;
    }
    let ones = if bytes == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * bytes)) - 1
    };
    ones << (8 * shift)
}

impl Snapshot for Hpet {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: HpetState = restore_state(STATE_VERSION, bytes)?;
        if state.timers.len() != TIMERS {
            return Err(StateError::Decode(format!(
                "{} HPET timers, this model has {TIMERS}",
                state.timers.len()
            )));
        }
        self.state = state;
        Ok(())
    }
}

impl Device for Hpet {
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        "hpet"
    }

    fn ports(&self) -> Vec<PortRange> {
        Vec::new()
    }

    fn io_read(&mut self, _port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        u32::MAX
    }

    fn io_write(&mut self, _port: u16, _size: u8, _value: u32, _ctx: &mut dyn DeviceContext) {}

    fn reset(&mut self) {
        // Lines held high are board wires: remember them so the next timer call lowers them.
        let driven: Vec<Option<u8>> = self.state.timers.iter().map(|t| t.driven_line).collect();
        self.state = HpetState::default();
        for (t, line) in self.state.timers.iter_mut().zip(driven) {
            t.driven_line = line;
        }
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        let stale = (0..self.state.timers.len())
            .any(|i| self.state.timers.get(i).map(|t| t.driven_line) != Some(self.wanted_line(i)));
        if stale {
            return Some(self.state.counter_base_ns);
        }
        if !self.enabled() {
            return None;
        }
        let checked = self.state.checked;
        (0..self.state.timers.len())
            .filter(|&i| self.route(i).is_some())
            .filter_map(|i| self.state.timers.get(i))
            .filter(|t| t.is(cfg::INT_ENABLE))
            .filter_map(|t| t.next_match(checked))
            .map(|v| self.time_of(v))
            .min()
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        self.sync(ctx.now_ns(), ctx);
    }

    fn mmio_ranges(&self) -> Vec<MmioRange> {
        vec![MmioRange::new(DEFAULT_BASE, WINDOW_LEN)]
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8], ctx: &mut dyn DeviceContext) {
        let now = ctx.now_ns();
        self.sync(now, ctx);
        let offset = addr.wrapping_sub(DEFAULT_BASE);
        let shift = (offset & 7) as usize;
        let bytes = self.read_register(offset & !7, now).to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(shift + i).copied().unwrap_or(0);
        }
    }

    fn mmio_write(&mut self, addr: u64, data: &[u8], ctx: &mut dyn DeviceContext) {
        let now = ctx.now_ns();
        self.sync(now, ctx);
        let offset = addr.wrapping_sub(DEFAULT_BASE);
        let shift = (offset & 7) as usize;
        let mut bytes = [0u8; 8];
        for (i, b) in data.iter().enumerate() {
            if let Some(slot) = bytes.get_mut(shift + i) {
                *slot = *b;
            }
        }
        let mask = access_mask(shift, data.len());
        self.write_register(offset & !7, u64::from_le_bytes(bytes), mask, now);
        self.sync(now, ctx);
    }
}
