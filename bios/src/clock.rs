//! The timer interrupt (INT 08h), the RTC interrupt (INT 70h) and INT 1Ah: tick count, RTC
//! time, date and alarm, and the PCI BIOS.

use crate::bda;
use crate::call::{Call, Outcome};
use crate::guest::{rd32, rd8, wr32, wr8};
use crate::io::{cmos_read, cmos_write, eoi, outb, unmask_irq};
use crate::BiosState;

/// Timer ticks in a day: 18.2065 Hz for 24 hours.
pub const TICKS_PER_DAY: u32 = 0x18_00B0;

/// RTC registers.
const RTC_SECONDS: u8 = 0x00;
const RTC_SECONDS_ALARM: u8 = 0x01;
const RTC_MINUTES: u8 = 0x02;
const RTC_MINUTES_ALARM: u8 = 0x03;
const RTC_HOURS: u8 = 0x04;
const RTC_HOURS_ALARM: u8 = 0x05;
const RTC_DAY: u8 = 0x07;
const RTC_MONTH: u8 = 0x08;
const RTC_YEAR: u8 = 0x09;
pub const RTC_B: u8 = 0x0B;
pub const RTC_C: u8 = 0x0C;
const RTC_CENTURY: u8 = 0x32;
const B_SET: u8 = 0x80;
const B_AIE: u8 = 0x20;
const B_BINARY: u8 = 0x04;
const B_DST: u8 = 0x01;

/// IRQ 0: count the tick, run the floppy motor time-out, acknowledge.
pub fn irq0(_st: &mut BiosState, c: &mut Call) -> Outcome {
    let mut ticks = rd32(c.p, bda::TICKS).wrapping_add(1);
    if ticks >= TICKS_PER_DAY {
        ticks = 0;
        let m = rd8(c.p, bda::MIDNIGHT);
        wr8(c.p, bda::MIDNIGHT, m.wrapping_add(1));
    }
    wr32(c.p, bda::TICKS, ticks);
    let motor = rd8(c.p, bda::FD_MOTOR_TICKS);
    if motor > 0 {
        wr8(c.p, bda::FD_MOTOR_TICKS, motor - 1);
        if motor == 1 {
            // Motors off; keep the controller enabled with DMA and interrupts.
            outb(c.p, 0x3F2, 0x0C);
            let st = rd8(c.p, bda::FD_MOTOR);
            wr8(c.p, bda::FD_MOTOR, st & 0xF0);
        }
    }
    eoi(c.p, 0);
    Outcome::Return
}

/// IRQ 8: read register C (which lowers the line) and acknowledge.
pub fn irq8(_st: &mut BiosState, c: &mut Call) -> Outcome {
    cmos_read(c.p, RTC_C);
    eoi(c.p, 8);
    Outcome::Return
}

fn to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

fn from_bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0F)
}

/// Reads an RTC register as BCD whatever mode the RTC is in.
fn rtc_get(c: &mut Call, reg: u8) -> u8 {
    let v = cmos_read(c.p, reg);
    if cmos_read(c.p, RTC_B) & B_BINARY != 0 {
        to_bcd(v)
    } else {
        v
    }
}

fn rtc_set(c: &mut Call, reg: u8, bcd: u8) {
    let v = if cmos_read(c.p, RTC_B) & B_BINARY != 0 {
        from_bcd(bcd)
    } else {
        bcd
    };
    cmos_write(c.p, reg, v);
}

/// Writes registers with the update cycle held off (SET), as the MC146818 requires.
fn rtc_set_all(c: &mut Call, values: &[(u8, u8)]) {
    let b = cmos_read(c.p, RTC_B);
    cmos_write(c.p, RTC_B, b | B_SET);
    for &(reg, v) in values {
        rtc_set(c, reg, v);
    }
    let b = cmos_read(c.p, RTC_B);
    cmos_write(c.p, RTC_B, b & !B_SET);
}

pub fn int1a(c: &mut Call) -> Outcome {
    match c.r.ah() {
        0x00 => {
            let ticks = rd32(c.p, bda::TICKS);
            c.set_cx((ticks >> 16) as u16);
            c.set_dx(ticks as u16);
            let m = rd8(c.p, bda::MIDNIGHT);
            c.set_al(m);
            wr8(c.p, bda::MIDNIGHT, 0);
        }
        0x01 => {
            let ticks = (u32::from(c.r.cx()) << 16) | u32::from(c.r.dx());
            wr32(c.p, bda::TICKS, ticks);
            wr8(c.p, bda::MIDNIGHT, 0);
        }
        0x02 => {
            let h = rtc_get(c, RTC_HOURS);
            let m = rtc_get(c, RTC_MINUTES);
            let s = rtc_get(c, RTC_SECONDS);
            let dst = cmos_read(c.p, RTC_B) & B_DST;
            c.set_cx((u16::from(h) << 8) | u16::from(m));
            c.set_dx((u16::from(s) << 8) | u16::from(dst));
            return c.ok();
        }
        0x03 => {
            let (h, m, s) = (c.r.ch(), c.r.cl(), c.r.dh());
            rtc_set_all(c, &[(RTC_HOURS, h), (RTC_MINUTES, m), (RTC_SECONDS, s)]);
            let b = cmos_read(c.p, RTC_B);
            cmos_write(c.p, RTC_B, (b & !B_DST) | (c.r.dl() & B_DST));
            return c.ok();
        }
        0x04 => {
            let century = rtc_get(c, RTC_CENTURY);
            let century = if century == 0 { 0x20 } else { century };
            let y = rtc_get(c, RTC_YEAR);
            let mo = rtc_get(c, RTC_MONTH);
            let d = rtc_get(c, RTC_DAY);
            c.set_cx((u16::from(century) << 8) | u16::from(y));
            c.set_dx((u16::from(mo) << 8) | u16::from(d));
            return c.ok();
        }
        0x05 => {
            let (cent, y, mo, d) = (c.r.ch(), c.r.cl(), c.r.dh(), c.r.dl());
            rtc_set_all(
                c,
                &[
                    (RTC_CENTURY, cent),
                    (RTC_YEAR, y),
                    (RTC_MONTH, mo),
                    (RTC_DAY, d),
                ],
            );
            return c.ok();
        }
        0x06 => {
            if cmos_read(c.p, RTC_B) & B_AIE != 0 {
                c.set_cf(true);
                return Outcome::Return;
            }
            let (h, m, s) = (c.r.ch(), c.r.cl(), c.r.dh());
            rtc_set_all(
                c,
                &[
                    (RTC_HOURS_ALARM, h),
                    (RTC_MINUTES_ALARM, m),
                    (RTC_SECONDS_ALARM, s),
                ],
            );
            let b = cmos_read(c.p, RTC_B);
            cmos_write(c.p, RTC_B, b | B_AIE);
            unmask_irq(c.p, 8);
            unmask_irq(c.p, 2);
            c.set_cf(false);
        }
        0x07 => {
            let b = cmos_read(c.p, RTC_B);
            cmos_write(c.p, RTC_B, b & !B_AIE);
            c.set_cf(false);
        }
        0xB1 => return crate::pci::int1a_b1(c),
        _ => c.set_cf(true),
    }
    Outcome::Return
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_round_trips() {
        for v in 0..100u8 {
            assert_eq!(from_bcd(to_bcd(v)), v);
        }
        assert_eq!(to_bcd(59), 0x59);
    }
}
