//! The command FIFO: collecting command bytes, running the commands that move no data, and
//! handing out result bytes.

use crate::{CommandPhase, Fdc};

/// Command codes (low five bits; the high bits are MT, MFM, SK or LOCK flags).
pub mod op {
    pub const SPECIFY: u8 = 0x03;
    pub const SENSE_DRIVE_STATUS: u8 = 0x04;
    pub const WRITE_DATA: u8 = 0x05;
    pub const READ_DATA: u8 = 0x06;
    pub const RECALIBRATE: u8 = 0x07;
    pub const SENSE_INTERRUPT: u8 = 0x08;
    pub const READ_ID: u8 = 0x0a;
    pub const FORMAT_TRACK: u8 = 0x0d;
    pub const DUMPREG: u8 = 0x0e;
    pub const SEEK: u8 = 0x0f;
    pub const VERSION: u8 = 0x10;
    pub const PERPENDICULAR: u8 = 0x12;
    pub const CONFIGURE: u8 = 0x13;
    pub const LOCK: u8 = 0x14;
}

/// ST0 interrupt codes.
pub mod st0 {
    pub const ABNORMAL: u8 = 0x40;
    pub const INVALID: u8 = 0x80;
    pub const POLLING: u8 = 0xc0;
    pub const SEEK_END: u8 = 0x20;
    pub const EQUIPMENT_CHECK: u8 = 0x10;
}

/// The 82077AA's answer to VERSION.
const VERSION_82077: u8 = 0x90;

/// Total length of a command starting with `first`, or `None` for an invalid command.
fn command_length(first: u8) -> Option<usize> {
    let len = match first & 0x1f {
        op::READ_DATA | op::WRITE_DATA => 9,
        op::FORMAT_TRACK => 6,
        op::CONFIGURE => 4,
        op::SPECIFY | op::SEEK => 3,
        op::SENSE_DRIVE_STATUS | op::RECALIBRATE | op::READ_ID | op::PERPENDICULAR => 2,
        op::SENSE_INTERRUPT | op::DUMPREG | op::VERSION if first & 0xe0 == 0 => 1,
        op::LOCK if first & 0x7f == op::LOCK => 1,
        _ => return None,
    };
    // Relative seek (bit 7 of SEEK) and the flag bits of commands that have none are invalid.
    let flags_ok = match first & 0x1f {
        op::READ_DATA => true,
        op::WRITE_DATA => first & 0x20 == 0,
        op::READ_ID | op::FORMAT_TRACK => first & 0xa0 == 0,
        op::LOCK => true,
        _ => first & 0xe0 == 0,
    };
    flags_ok.then_some(len)
}

impl Fdc {
    /// End a command with result bytes; `irq` for the commands that interrupt at the end.
    pub(crate) fn finish(&mut self, result: Vec<u8>, irq: bool) {
        let s = &mut self.state;
        s.command.clear();
        if result.is_empty() {
            s.phase = CommandPhase::Command;
        } else {
            s.phase = CommandPhase::Result;
            s.result = result;
            s.result_pos = 0;
        }
        if irq {
            self.interrupt();
        }
    }

    pub(crate) fn read_fifo(&mut self) -> u8 {
        match self.state.phase {
            CommandPhase::Result => {
                let s = &mut self.state;
                // Reading the first result byte acknowledges the interrupt.
                s.irq_pending = false;
                let byte = s
                    .result
                    .get(usize::from(s.result_pos))
                    .copied()
                    .unwrap_or(0);
                s.result_pos = s.result_pos.saturating_add(1);
                if usize::from(s.result_pos) >= s.result.len() {
                    s.result.clear();
                    s.result_pos = 0;
                    s.phase = CommandPhase::Command;
                }
                byte
            }
            CommandPhase::Execution if self.state.non_dma() => self.pio_read(),
            _ => 0xff,
        }
    }

    pub(crate) fn write_fifo(&mut self, value: u8) {
        if self.state.in_reset() {
            return;
        }
        match self.state.phase {
            CommandPhase::Command => {}
            CommandPhase::Execution if self.state.non_dma() => return self.pio_write(value),
            _ => return,
        }
        let Some(len) = command_length(*self.state.command.first().unwrap_or(&value)) else {
            self.state.command.clear();
            return self.finish(vec![st0::INVALID], false);
        };
        self.state.command.push(value);
        if self.state.command.len() >= len {
            let cmd = std::mem::take(&mut self.state.command);
            self.execute(&cmd);
        }
    }

    /// Run a complete command (its length was checked on the first byte).
    fn run(&mut self, cmd: &[u8]) {
        let byte = |i: usize| cmd.get(i).copied().unwrap_or(0);
        let first = byte(0);
        match first & 0x1f {
            op::SPECIFY => {
                self.state.specify1 = byte(1);
                self.state.specify2 = byte(2);
                self.finish(Vec::new(), false);
            }
            op::SENSE_DRIVE_STATUS => self.sense_drive_status(byte(1)),
            op::RECALIBRATE => self.seek(byte(1), 0),
            op::SEEK => self.seek(byte(1), byte(2)),
            op::SENSE_INTERRUPT => self.sense_interrupt(),
            op::DUMPREG => self.dumpreg(),
            op::VERSION => self.finish(vec![VERSION_82077], false),
            op::PERPENDICULAR => {
                // OW (bit 7) lets the drive bits D3-D0 change; GAP and WGATE always do.
                let v = byte(1);
                let drives = if v & 0x80 != 0 {
                    v
                } else {
                    self.state.perpendicular
                };
                self.state.perpendicular = (drives & 0x3c) | (v & 0x03);
                self.finish(Vec::new(), false);
            }
            op::CONFIGURE => {
                self.state.config = byte(2);
                self.state.pretrk = byte(3);
                self.finish(Vec::new(), false);
            }
            op::LOCK => {
                self.state.locked = first & 0x80 != 0;
                self.finish(vec![u8::from(self.state.locked) << 4], false);
            }
            op::READ_ID => self.read_id(byte(1)),
            _ => self.start_transfer(cmd),
        }
    }

    fn execute(&mut self, cmd: &[u8]) {
        // A new command acknowledges a pending interrupt, but SENSE INTERRUPT STATUS reports it.
        if cmd
            .first()
            .is_some_and(|&b| b & 0x1f != op::SENSE_INTERRUPT)
        {
            self.state.irq_pending = false;
        }
        self.run(cmd);
    }

    fn sense_drive_status(&mut self, hds: u8) {
        let (drive, head) = (hds & 3, hds >> 2 & 1);
        let mut st3 = drive | head << 2;
        if let Some(d) = self.state.drive_ref(drive) {
            st3 |= 0x20 | 0x08; // ready, two-sided
            st3 |= u8::from(d.track == 0) << 4;
            st3 |= u8::from(d.media.is_some() && d.write_protected) << 6;
        }
        self.finish(vec![st3], false);
    }

    /// SEEK / RECALIBRATE: move the heads at once and report the end through SENSE INTERRUPT.
    fn seek(&mut self, hds: u8, cylinder: u8) {
        let (drive, head) = (hds & 3, hds >> 2 & 1);
        let status = match self.state.drive(drive) {
            Some(d) => {
                d.track = cylinder;
                d.head = head;
                if d.media.is_some() {
                    d.disk_changed = false; // a step pulse with a disk in clears the line
                }
                st0::SEEK_END | head << 2 | drive
            }
            None => st0::SEEK_END | st0::ABNORMAL | st0::EQUIPMENT_CHECK | drive,
        };
        if self.state.seek_status.len() < 4 {
            self.state.seek_status.push(status);
        }
        self.finish(Vec::new(), true);
    }

    fn sense_interrupt(&mut self) {
        self.state.irq_pending = false;
        let polls = self.state.reset_polls;
        let status = if polls > 0 {
            self.state.reset_polls -= 1;
            Some(st0::POLLING | (4 - polls))
        } else if self.state.seek_status.is_empty() {
            None
        } else {
            Some(self.state.seek_status.remove(0))
        };
        let result = match status {
            Some(st) => {
                let pcn = self.state.drive_ref(st & 3).map_or(0, |d| d.track);
                vec![st, pcn]
            }
            None => vec![st0::INVALID],
        };
        self.finish(result, false);
    }

    fn dumpreg(&mut self) {
        let s = &self.state;
        let result = vec![
            s.drive0.track,
            s.drive1.track,
            0,
            0,
            s.specify1,
            s.specify2,
            s.transfer.eot,
            u8::from(s.locked) << 7 | (s.perpendicular & 0x3f),
            s.config,
            s.pretrk,
        ];
        self.finish(result, false);
    }

    fn read_id(&mut self, hds: u8) {
        let (drive, head) = (hds & 3, hds >> 2 & 1);
        let rate = self.state.data_rate;
        let Some(d) = self.state.drive(drive) else {
            let st = st0::ABNORMAL | st0::EQUIPMENT_CHECK | head << 2 | drive;
            return self.finish(vec![st, 0, 0, 0, 0, 0, 2], true);
        };
        d.head = head;
        let track = d.track;
        let readable = d
            .media
            .is_some_and(|m| m.readable_at(rate) && track < m.tracks);
        let result = if readable {
            vec![head << 2 | drive, 0, 0, track, head, 1, 2]
        } else {
            // No disk, or not at this rate: no address mark is ever found.
            vec![
                st0::ABNORMAL | head << 2 | drive,
                0x01,
                0,
                track,
                head,
                1,
                2,
            ]
        };
        self.finish(result, true);
    }
}
