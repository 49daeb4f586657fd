//! Motorola MC146818 real-time clock and CMOS RAM (ports 0x70/0x71, IRQ8).
//!
//! Port 0x70 selects one of the chip's 128 bytes (bit 7 is the PC's NMI mask, kept for the
//! machine to read); port 0x71 reads or writes it. Bytes 0x00-0x09 are the clock (seconds,
//! alarms, day of week, date), 0x0A-0x0D the control registers A-D, and the rest battery-backed
//! RAM; the machine presets it with [`Rtc::set_cmos`]. As PC firmware expects, byte 0x32 holds
//! the century and the clock keeps it up to date.
//!
//! Time starts at [`DeviceConfig::start_time_unix`] and advances with virtual time: the clock
//! registers are counted forward at each once-a-second update, in BCD or binary and 12- or
//! 24-hour format as register B says. The SET bit, the divider reset, the update-in-progress
//! flag (UIP, set 244 us before the update cycle and through its 1984 us), and the periodic,
//! alarm (with "don't care" values 0xC0-0xFF) and update-ended interrupts are modelled. Reading
//! register C clears the flags and lowers IRQ8.

mod calendar;
#[cfg(test)]
mod tests;

pub use calendar::{civil_from_days, days_from_civil, DateTime, Format};

use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, ConfigError, Device, DeviceConfig,
    DeviceContext, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`RtcState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// IRQ line of the RTC on a PC.
pub const IRQ: u8 = 8;

/// Size of the chip's address space (clock, control registers and RAM).
pub const CMOS_SIZE: usize = 128;

/// Register addresses.
pub mod reg {
    pub const SECONDS: u8 = 0x00;
    pub const SECONDS_ALARM: u8 = 0x01;
    pub const MINUTES: u8 = 0x02;
    pub const MINUTES_ALARM: u8 = 0x03;
    pub const HOURS: u8 = 0x04;
    pub const HOURS_ALARM: u8 = 0x05;
    pub const DAY_OF_WEEK: u8 = 0x06;
    pub const DAY_OF_MONTH: u8 = 0x07;
    pub const MONTH: u8 = 0x08;
    pub const YEAR: u8 = 0x09;
    pub const A: u8 = 0x0a;
    pub const B: u8 = 0x0b;
    pub const C: u8 = 0x0c;
    pub const D: u8 = 0x0d;
    /// The PC's century byte (not part of the chip's clock, maintained here all the same).
    pub const CENTURY: u8 = 0x32;
}

const A_UIP: u8 = 0x80;
const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const B_SQWE: u8 = 0x08;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;
const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
const D_VRT: u8 = 0x80;

const SECOND_NS: i128 = 1_000_000_000;
/// UIP rises this long before an update completes (244 us warning + 1984 us update cycle).
const UIP_LEAD_NS: u64 = 244_000 + 1_984_000;
/// The time base on a PC.
const TIME_BASE_HZ: i128 = 32_768;

/// Plugin descriptor (no options; the start time comes from the machine configuration).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "mc146818",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(Rtc::new(config.start_time_unix)))
}

/// Guest-visible state of the RTC.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RtcState {
    /// The chip's 128 bytes, at their register addresses (see [`reg`]). Register C's flag
    /// bits are kept here; its IRQF bit and register D are computed when read.
    pub cmos: Vec<u8>,
    /// Register selected through port 0x70.
    pub index: u8,
    /// Port 0x70 bit 7: NMI disabled.
    pub nmi_disabled: bool,
    /// Virtual time (ns) of one update completion; updates follow every second from there.
    pub update_phase_ns: u64,
    /// Virtual time (ns) at which the divider chain last started; periodic ticks count from it.
    pub divider_start_ns: u64,
    /// Updates and periodic ticks up to this virtual time (ns) have been applied.
    pub synced_ns: u64,
    /// Level last driven on IRQ8.
    pub irq_level: bool,
}

/// The MC146818 RTC with its CMOS RAM.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_rtc::Rtc;
///
/// let mut rtc = Rtc::new(1_700_000_000); // 2023-11-14 22:13:20 UTC
/// let mut ctx = FakeContext::new();
/// let mut read = |rtc: &mut Rtc, ctx: &mut FakeContext, index| {
///     rtc.io_write(0x70, 1, index, ctx);
///     rtc.io_read(0x71, 1, ctx)
/// };
/// assert_eq!(read(&mut rtc, &mut ctx, 0x04), 0x22); // hours, BCD
/// ctx.now_ns = 40_000_000_000;
/// assert_eq!(read(&mut rtc, &mut ctx, 0x00), 0x00); // 40 s later: 22:14:00
/// ```
pub struct Rtc {
    state: RtcState,
}

impl Rtc {
    /// A clock reading `start_time_unix` (seconds since 1970, UTC) at virtual time 0, with
    /// the control registers as a PC BIOS leaves them (32.768 kHz time base, 1024 Hz periodic
    /// rate, BCD, 24-hour).
    #[must_use]
    pub fn new(start_time_unix: i64) -> Self {
        let mut state = RtcState {
            cmos: vec![0; CMOS_SIZE],
            index: 0,
            nmi_disabled: false,
            update_phase_ns: 0,
            divider_start_ns: 0,
            synced_ns: 0,
            irq_level: false,
        };
        state.cmos[usize::from(reg::A)] = 0x26;
        state.cmos[usize::from(reg::B)] = B_24H;
        let mut rtc = Self { state };
        rtc.write_time(start_time_unix);
        let dow = start_time_unix
            .div_euclid(calendar::DAY)
            .wrapping_add(4)
            .rem_euclid(7)
            + 1;
        rtc.set_reg(reg::DAY_OF_WEEK, dow as u8);
        rtc
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &RtcState {
        &self.state
    }

    /// Preset a CMOS byte (index taken modulo 128) as is, with no side effect: for the
    /// machine to fill the NVRAM (memory size, disks, boot order...) before the guest runs.
    pub fn set_cmos(&mut self, index: u8, value: u8) {
        self.set_reg(index, value);
    }

    /// A CMOS byte as stored (index taken modulo 128).
    #[must_use]
    pub fn cmos(&self, index: u8) -> u8 {
        self.reg(index)
    }

    /// Whether the guest masked NMI through port 0x70 bit 7.
    #[must_use]
    pub fn nmi_masked(&self) -> bool {
        self.state.nmi_disabled
    }

    fn reg(&self, index: u8) -> u8 {
        self.state
            .cmos
            .get(usize::from(index & 0x7f))
            .copied()
            .unwrap_or(0)
    }

    fn set_reg(&mut self, index: u8, value: u8) {
        if let Some(byte) = self.state.cmos.get_mut(usize::from(index & 0x7f)) {
            *byte = value;
        }
    }

    fn format(&self) -> Format {
        let b = self.reg(reg::B);
        Format {
            binary: b & B_BINARY != 0,
            hours24: b & B_24H != 0,
        }
    }

    /// The divider chain runs unless register A's DV bits hold it in reset (11x).
    fn running(&self) -> bool {
        (self.reg(reg::A) >> 4) & 6 != 6
    }

    fn updating(&self) -> bool {
        self.running() && self.reg(reg::B) & B_SET == 0
    }

    /// Periodic interrupt period in 32.768 kHz clocks, if register A selects one.
    fn periodic_clocks(&self) -> Option<i128> {
        match self.reg(reg::A) & 0x0f {
            0 => None,
            rs @ 1..=2 => Some(1 << (rs + 6)),
            rs => Some(1 << (rs - 1)),
        }
    }

    /// Updates completed at or before `t`, counted from an arbitrary origin.
    fn updates_until(&self, t: u64) -> i128 {
        (i128::from(t) - i128::from(self.state.update_phase_ns)).div_euclid(SECOND_NS)
    }

    fn next_update_after(&self, t: u64) -> u64 {
        let k = self.updates_until(t) + 1;
        clamp_ns(i128::from(self.state.update_phase_ns) + k * SECOND_NS)
    }

    /// Periodic ticks at or before `t`, counted from the divider start.
    fn periods_until(&self, t: u64, clocks: i128) -> i128 {
        let elapsed = i128::from(t) - i128::from(self.state.divider_start_ns);
        (elapsed * TIME_BASE_HZ)
            .div_euclid(SECOND_NS)
            .div_euclid(clocks)
    }

    fn next_period_after(&self, t: u64, clocks: i128) -> u64 {
        let m = self.periods_until(t, clocks) + 1;
        let numerator = m * clocks * SECOND_NS;
        // ceil(numerator / TIME_BASE_HZ) for any sign.
        let offset = -(-numerator).div_euclid(TIME_BASE_HZ);
        clamp_ns(i128::from(self.state.divider_start_ns) + offset)
    }

    /// Apply the updates and periodic ticks that happened up to `now`.
    fn sync(&mut self, now: u64) {
        let from = self.state.synced_ns;
        let now = now.max(from);
        if self.running() {
            if let Some(clocks) = self.periodic_clocks() {
                if self.periods_until(now, clocks) > self.periods_until(from, clocks) {
                    self.set_reg(reg::C, self.reg(reg::C) | C_PF);
                }
            }
            let updates = self.updates_until(now) - self.updates_until(from);
            if updates > 0 && self.updating() {
                self.advance_time(u64::try_from(updates).unwrap_or(u64::MAX));
            }
        }
        self.state.synced_ns = now;
    }

    /// The clock as the registers hold it, read tolerantly (out-of-range values are clamped).
    fn current_time(&self) -> DateTime {
        let f = self.format();
        let yy = i64::from(f.decode(self.reg(reg::YEAR)) % 100);
        let century = match f.decode(self.reg(reg::CENTURY)) {
            c @ 19..=99 => i64::from(c),
            _ if yy < 70 => 20,
            _ => 19,
        };
        let year = century * 100 + yy;
        let month = f.decode(self.reg(reg::MONTH)).clamp(1, 12);
        DateTime {
            year,
            month,
            day: f
                .decode(self.reg(reg::DAY_OF_MONTH))
                .clamp(1, calendar::days_in_month(year, month)),
            hour: f.decode_hour(self.reg(reg::HOURS)),
            minute: f.decode(self.reg(reg::MINUTES)).min(59),
            second: f.decode(self.reg(reg::SECONDS)).min(59),
        }
    }

    fn write_time(&mut self, t: i64) {
        let f = self.format();
        let dt = DateTime::from_unix(t);
        self.set_reg(reg::SECONDS, f.encode(dt.second));
        self.set_reg(reg::MINUTES, f.encode(dt.minute));
        self.set_reg(reg::HOURS, f.encode_hour(dt.hour));
        self.set_reg(reg::DAY_OF_MONTH, f.encode(dt.day));
        self.set_reg(reg::MONTH, f.encode(dt.month));
        self.set_reg(reg::YEAR, f.encode(dt.year.rem_euclid(100) as u32));
        self.set_reg(
            reg::CENTURY,
            f.encode(dt.year.div_euclid(100).rem_euclid(100) as u32),
        );
    }

    fn alarm_matches(&self, dt: &DateTime) -> bool {
        let f = self.format();
        [
            (reg::SECONDS_ALARM, f.encode(dt.second)),
            (reg::MINUTES_ALARM, f.encode(dt.minute)),
            (reg::HOURS_ALARM, f.encode_hour(dt.hour)),
        ]
        .iter()
        .all(|&(alarm, now)| {
            let a = self.reg(alarm);
            a & 0xc0 == 0xc0 || a == now
        })
    }

    /// `n` update cycles: the clock moves `n` seconds on, with alarm and update-ended flags.
    fn advance_time(&mut self, n: u64) {
        let t0 = self.current_time().to_unix();
        // Over a day every alarm setting has matched if it ever will: look at one day at most.
        let first = n.saturating_sub(calendar::DAY as u64 - 1).max(1);
        let alarm = (first..=n).any(|i| {
            let t = t0.saturating_add(i64::try_from(i).unwrap_or(i64::MAX));
            self.alarm_matches(&DateTime::from_unix(t))
        });
        let t = t0.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        self.write_time(t);
        let days = t.div_euclid(calendar::DAY) - t0.div_euclid(calendar::DAY);
        let dow = i64::from(self.reg(reg::DAY_OF_WEEK).clamp(1, 7));
        self.set_reg(reg::DAY_OF_WEEK, ((dow - 1 + days).rem_euclid(7) + 1) as u8);
        let mut flags = C_UF;
        if alarm {
            flags |= C_AF;
        }
        self.set_reg(reg::C, self.reg(reg::C) | flags);
    }

    /// IRQF: a flag is set whose interrupt is enabled.
    fn irqf(&self) -> bool {
        self.reg(reg::C) & self.reg(reg::B) & (C_PF | C_AF | C_UF) != 0
    }

    fn update_irq(&mut self, ctx: &mut dyn DeviceContext) {
        let level = self.irqf();
        if level != self.state.irq_level {
            self.state.irq_level = level;
            ctx.set_irq(IRQ, level);
        }
    }

    fn uip(&self, now: u64) -> bool {
        self.updating() && self.next_update_after(now) - now <= UIP_LEAD_NS
    }

    fn read_register(&mut self, index: u8, now: u64) -> u8 {
        match index {
            reg::A => (self.reg(reg::A) & !A_UIP) | if self.uip(now) { A_UIP } else { 0 },
            reg::C => {
                let value = self.reg(reg::C) | if self.irqf() { C_IRQF } else { 0 };
                self.set_reg(reg::C, 0);
                value
            }
            reg::D => D_VRT,
            _ => self.reg(index),
        }
    }

    fn write_register(&mut self, index: u8, value: u8, now: u64) {
        match index {
            reg::A => {
                let was_running = self.running();
                self.set_reg(reg::A, value & !A_UIP);
                if !was_running && self.running() {
                    // Out of divider reset: the first update comes half a second later.
                    self.state.divider_start_ns = now;
                    self.state.update_phase_ns = now.saturating_add(500_000_000);
                }
            }
            reg::B => {
                let value = if value & B_SET != 0 {
                    value & !B_UIE
                } else {
                    value
                };
                self.set_reg(reg::B, value);
            }
            reg::C | reg::D => {} // read-only
            _ => self.set_reg(index, value),
        }
    }

    fn read_port(&mut self, port: u16, now: u64) -> u8 {
        match port {
            0x71 => self.read_register(self.state.index, now),
            _ => 0xff, // the index port is write-only
        }
    }

    fn write_port(&mut self, port: u16, value: u8, now: u64) {
        match port {
            0x70 => {
                self.state.index = value & 0x7f;
                self.state.nmi_disabled = value & 0x80 != 0;
            }
            0x71 => self.write_register(self.state.index, value, now),
            _ => {}
        }
    }
}

fn clamp_ns(t: i128) -> u64 {
    u64::try_from(t.max(0)).unwrap_or(u64::MAX)
}

impl Snapshot for Rtc {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: RtcState = restore_state(STATE_VERSION, bytes)?;
        if state.cmos.len() != CMOS_SIZE {
            return Err(StateError::Decode(format!(
                "CMOS has {} bytes, expected {CMOS_SIZE}",
                state.cmos.len()
            )));
        }
        self.state = state;
        Ok(())
    }
}

impl Device for Rtc {
    fn name(&self) -> &str {
        "rtc"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(0x70, 2)]
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let now = ctx.now_ns();
        self.sync(now);
        let value = read_bytewise(port, size, |p| self.read_port(p, now));
        self.update_irq(ctx);
        value
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        let now = ctx.now_ns();
        self.sync(now);
        write_bytewise(port, size, value, |p, byte| self.write_port(p, byte, now));
        self.update_irq(ctx);
    }

    /// The chip's RESET input: interrupt enables and flags clear; time and RAM are kept.
    fn reset(&mut self) {
        let b = self.reg(reg::B) & !(B_PIE | B_AIE | B_UIE | B_SQWE);
        self.set_reg(reg::B, b);
        self.set_reg(reg::C, 0);
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        if self.irqf() != self.state.irq_level {
            return Some(0);
        }
        if self.state.irq_level || !self.running() {
            return None;
        }
        let b = self.reg(reg::B);
        let t = self.state.synced_ns;
        let periodic = self
            .periodic_clocks()
            .filter(|_| b & B_PIE != 0)
            .map(|clocks| self.next_period_after(t, clocks));
        let update =
            (b & (B_UIE | B_AIE) != 0 && b & B_SET == 0).then(|| self.next_update_after(t));
        [periodic, update].into_iter().flatten().min()
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        self.sync(ctx.now_ns());
        self.update_irq(ctx);
    }
}
