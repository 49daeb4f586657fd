//! One IDE channel: two drive positions sharing a task-file register set, a device control
//! register and an interrupt line, plus the channel's bus-master registers.

use crate::drive::{status, Backend, DriveState, Phase};
use nestor_device::DeviceContext;
use serde::{Deserialize, Serialize};

/// Device control register bits.
pub mod control {
    /// Interrupts disabled (the drive's INTRQ does not reach the IRQ line).
    pub const NIEN: u8 = 0x02;
    /// Software reset of both drives while set.
    pub const SRST: u8 = 0x04;
    /// Read the previous (high-order) byte of the LBA48 registers.
    pub const HOB: u8 = 0x80;
}

/// Bus-master command and status register bits.
pub mod bm {
    pub const START: u8 = 0x01;
    /// Direction: set when the bus master writes memory (a disk read).
    pub const WRITE_MEMORY: u8 = 0x08;
    pub const ACTIVE: u8 = 0x01;
    pub const ERROR: u8 = 0x02;
    pub const INTERRUPT: u8 = 0x04;
    /// Software-owned "drive 0/1 is DMA capable" bits.
    pub const DRIVE_CAPABLE: u8 = 0x60;
}

/// Guest-visible state of a channel.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelState {
    pub master: DriveState,
    pub slave: DriveState,
    pub device_control: u8,
    /// Level last driven on the channel's IRQ line.
    pub irq_level: bool,
    pub bm_command: u8,
    pub bm_status: u8,
    /// Physical address of the PRD table (dword-aligned).
    pub bm_prd: u32,
}

/// Host resources of a channel's two drives, master first.
pub(crate) type Backends = [Backend; 2];

impl ChannelState {
    /// Index of the selected drive: the DEV bit of the device register (0 master, 1 slave).
    #[must_use]
    pub fn selected(&self) -> usize {
        usize::from(self.master.regs.device >> 4 & 1)
    }

    pub fn drive(&mut self, index: usize) -> &mut DriveState {
        if index == 0 {
            &mut self.master
        } else {
            &mut self.slave
        }
    }

    fn drives(&mut self) -> [&mut DriveState; 2] {
        [&mut self.master, &mut self.slave]
    }

    fn in_reset(&self) -> bool {
        self.device_control & control::SRST != 0
    }

    /// Read a command block register (offset 0-7 from the channel's base port).
    pub fn read(&mut self, offset: u16, size: u8, disks: &mut Backends) -> u32 {
        let sel = self.selected();
        let hob = self.device_control & control::HOB != 0;
        let d = self.drive(sel);
        if !d.present() {
            return 0;
        }
        let r = &d.regs;
        let byte = match offset {
            0 => {
                let (value, done) = d.read_data(size);
                if done {
                    if let Some(disk) = disks.get_mut(sel) {
                        d.pio_in_done(disk);
                    }
                }
                return value;
            }
            1 => r.error,
            2 if hob => r.count_prev,
            2 => r.count,
            3 if hob => r.lba_low_prev,
            3 => r.lba_low,
            4 if hob => r.lba_mid_prev,
            4 => r.lba_mid,
            5 if hob => r.lba_high_prev,
            5 => r.lba_high,
            6 => r.device | 0xa0,
            _ => {
                // The status register: reading it acknowledges the drive's interrupt.
                d.intrq = false;
                self.status_of(sel)
            }
        };
        u32::from(byte)
    }

    /// Status of drive `index` as the host reads it (BSY while a software reset is held).
    fn status_of(&mut self, index: usize) -> u8 {
        let reset = self.in_reset();
        let d = self.drive(index);
        match (d.present(), reset) {
            (false, _) => 0,
            (true, true) => status::BSY,
            (true, false) => d.regs.status,
        }
    }

    /// The alternate status register (control block): status without acknowledging.
    pub fn alt_status(&mut self) -> u8 {
        let sel = self.selected();
        self.status_of(sel)
    }

    /// Write a command block register (offset 0-7).
    pub fn write(&mut self, offset: u16, size: u8, value: u32, disks: &mut Backends) {
        let byte = value as u8;
        if offset != 0 && offset != 7 {
            // Any command block write drops HOB, so the next reads see the current bytes.
            self.device_control &= !control::HOB;
        }
        match offset {
            0 => {
                let sel = self.selected();
                let d = self.drive(sel);
                if d.present() && d.write_data(size, value) {
                    if let Some(disk) = disks.get_mut(sel) {
                        d.pio_out_done(disk);
                    }
                }
            }
            1..=5 => {
                for d in self.drives() {
                    let r = &mut d.regs;
                    let (cur, prev) = match offset {
                        1 => (&mut r.feature, &mut r.feature_prev),
                        2 => (&mut r.count, &mut r.count_prev),
                        3 => (&mut r.lba_low, &mut r.lba_low_prev),
                        4 => (&mut r.lba_mid, &mut r.lba_mid_prev),
                        _ => (&mut r.lba_high, &mut r.lba_high_prev),
                    };
                    *prev = *cur;
                    *cur = byte;
                }
            }
            6 => self.drives().into_iter().for_each(|d| d.regs.device = byte),
            _ => self.command(byte, disks),
        }
    }

    fn command(&mut self, cmd: u8, disks: &mut Backends) {
        if self.in_reset() {
            return;
        }
        let sel = self.selected();
        if !self.drive(sel).present() {
            return;
        }
        if cmd == 0x90 {
            // EXECUTE DEVICE DIAGNOSTIC runs on both drives; the result interrupts once.
            for d in self.drives().into_iter().filter(|d| d.present()) {
                d.reset_signature();
            }
            self.drive(sel).raise_irq();
            return;
        }
        if let Some(disk) = disks.get_mut(sel) {
            let d = self.drive(sel);
            d.intrq = false; // writing a command acknowledges a pending interrupt
            d.ata_command(cmd, disk);
        }
    }

    /// Write the device control register (control block).
    pub fn write_device_control(&mut self, value: u8) {
        let was_reset = self.in_reset();
        self.device_control = value;
        let reset = self.in_reset();
        if reset && !was_reset {
            for d in self.drives() {
                d.end_transfer();
                d.intrq = false;
            }
        } else if was_reset && !reset {
            for d in self.drives() {
                d.reset_signature();
                d.regs.device = 0;
                d.intrq = false;
            }
        }
    }

    /// The level the channel drives on its IRQ line now.
    #[must_use]
    pub fn irq_wanted(&self) -> bool {
        let d = if self.selected() == 0 {
            &self.master
        } else {
            &self.slave
        };
        d.intrq && self.device_control & control::NIEN == 0
    }

    /// After an access: latch new drive interrupts in the bus-master status and drive the IRQ
    /// line, with a fresh edge for an interrupt raised while the line was already high.
    pub fn settle(&mut self, before: [u32; 2], irq: u8, ctx: &mut dyn DeviceContext) {
        let now = self.interrupt_counts();
        if before != now {
            self.bm_status |= bm::INTERRUPT;
        }
        let sel = self.selected();
        let level = self.irq_wanted();
        if level && self.irq_level && before.get(sel) != now.get(sel) {
            ctx.set_irq(irq, false);
            ctx.set_irq(irq, true);
        } else if level != self.irq_level {
            ctx.set_irq(irq, level);
        }
        self.irq_level = level;
    }

    /// Both drives' interrupt counts, to compare after an access.
    #[must_use]
    pub fn interrupt_counts(&self) -> [u32; 2] {
        [self.master.interrupts, self.slave.interrupts]
    }

    /// Read a bus-master register (offset 0-7 in the channel's half of BAR4).
    #[must_use]
    pub fn bm_read(&self, offset: u16) -> u8 {
        match offset {
            0 => self.bm_command & (bm::START | bm::WRITE_MEMORY),
            2 => self.bm_status & (bm::ACTIVE | bm::ERROR | bm::INTERRUPT | bm::DRIVE_CAPABLE),
            4..=7 => (self.bm_prd >> (8 * (offset - 4))) as u8,
            _ => 0,
        }
    }

    /// Write a bus-master register. Starting the engine sets ACTIVE; the caller then runs a
    /// waiting DMA command with `run_dma`.
    pub fn bm_write(&mut self, offset: u16, value: u8) {
        match offset {
            0 => {
                let was = self.bm_command & bm::START != 0;
                self.bm_command = value & (bm::START | bm::WRITE_MEMORY);
                let start = value & bm::START != 0;
                if start && !was {
                    self.bm_status |= bm::ACTIVE;
                } else if !start {
                    self.bm_status &= !bm::ACTIVE;
                }
            }
            2 => {
                let cleared = value & (bm::ERROR | bm::INTERRUPT);
                self.bm_status =
                    (self.bm_status & !cleared & !bm::DRIVE_CAPABLE) | (value & bm::DRIVE_CAPABLE);
            }
            4..=7 => {
                let shift = 8 * u32::from(offset - 4);
                let prd = (self.bm_prd & !(0xff << shift)) | u32::from(value) << shift;
                self.bm_prd = prd & !3;
            }
            _ => {}
        }
    }

    /// Index of the drive with a DMA command waiting, the selected one first.
    pub(crate) fn dma_drive(&self) -> Option<usize> {
        let waiting = |d: &DriveState| matches!(d.phase, Phase::DmaIn | Phase::DmaOut);
        let sel = self.selected();
        let order = [sel, 1 - sel];
        order.into_iter().find(|&i| {
            if i == 0 {
                waiting(&self.master)
            } else {
                waiting(&self.slave)
            }
        })
    }
}
