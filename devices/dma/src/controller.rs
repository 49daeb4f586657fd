//! One 8237A: four channels, the command, status, request, mask and temporary registers, and
//! the byte-pointer flip-flop that splits 16-bit addresses and counts into two port accesses.

use crate::DmaTransfer;
use nestor_device::DeviceContext;
use serde::{Deserialize, Serialize};

/// Mode register bits 2-3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferType {
    /// Addresses and count advance; no data moves.
    Verify,
    /// Device to memory (a disk read).
    Write,
    /// Memory to device (a disk write).
    Read,
    /// The reserved combination: treated as verify.
    Illegal,
}

/// One channel's registers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelState {
    pub base_address: u16,
    pub base_count: u16,
    pub current_address: u16,
    /// Transfers left minus one: the channel reaches terminal count when it wraps past 0.
    pub current_count: u16,
    /// Mode register bits 2-7 (bits 0-1 select the channel when written).
    pub mode: u8,
    pub masked: bool,
    /// Software DMA request (request register), shown in status bits 4-7.
    pub request: bool,
    /// Terminal count reached since the status register was last read.
    pub terminal_count: bool,
}

impl ChannelState {
    #[must_use]
    pub fn transfer_type(&self) -> TransferType {
        match (self.mode >> 2) & 3 {
            0 => TransferType::Verify,
            1 => TransferType::Write,
            2 => TransferType::Read,
            _ => TransferType::Illegal,
        }
    }

    fn auto_init(&self) -> bool {
        self.mode & 0x10 != 0
    }

    fn decrement(&self) -> bool {
        self.mode & 0x20 != 0
    }
}

/// One controller's registers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ControllerState {
    /// Command register (bit 2: controller disable).
    pub command: u8,
    /// Byte pointer flip-flop: false addresses the low byte next.
    pub flip_flop: bool,
    /// Temporary register (memory-to-memory transfers, which the PC never uses).
    pub temporary: u8,
    pub channel0: ChannelState,
    pub channel1: ChannelState,
    pub channel2: ChannelState,
    pub channel3: ChannelState,
}

impl Default for ControllerState {
    fn default() -> Self {
        let masked = ChannelState {
            masked: true,
            ..ChannelState::default()
        };
        Self {
            command: 0,
            flip_flop: false,
            temporary: 0,
            channel0: masked.clone(),
            channel1: masked.clone(),
            channel2: masked.clone(),
            channel3: masked,
        }
    }
}

impl ControllerState {
    #[must_use]
    pub fn channel(&self, index: usize) -> Option<&ChannelState> {
        match index {
            0 => Some(&self.channel0),
            1 => Some(&self.channel1),
            2 => Some(&self.channel2),
            3 => Some(&self.channel3),
            _ => None,
        }
    }

    fn channel_mut(&mut self, index: usize) -> Option<&mut ChannelState> {
        match index {
            0 => Some(&mut self.channel0),
            1 => Some(&mut self.channel1),
            2 => Some(&mut self.channel2),
            3 => Some(&mut self.channel3),
            _ => None,
        }
    }

    fn channels_mut(&mut self) -> [&mut ChannelState; 4] {
        [
            &mut self.channel0,
            &mut self.channel1,
            &mut self.channel2,
            &mut self.channel3,
        ]
    }

    /// Command register bit 2 clear: the controller answers DREQs.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.command & 0x04 == 0
    }

    /// Flip the byte pointer, returning whether this access is to the high byte.
    fn toggle(&mut self) -> bool {
        let high = self.flip_flop;
        self.flip_flop = !high;
        high
    }

    /// Read register `reg` (0-15, the port offset on controller 1).
    pub fn read(&mut self, reg: u8) -> u8 {
        match reg {
            0..=7 => {
                let high = self.toggle();
                let Some(c) = self.channel(usize::from(reg >> 1)) else {
                    return 0xff;
                };
                let value = if reg & 1 == 0 {
                    c.current_address
                } else {
                    c.current_count
                };
                if high {
                    (value >> 8) as u8
                } else {
                    value as u8
                }
            }
            8 => self.read_status(),
            0xd => self.temporary,
            // Reading the mask register is a PIIX extension of the 8237A.
            0xf => {
                let mut mask = 0xf0;
                for (i, c) in self.channels_mut().into_iter().enumerate() {
                    mask |= u8::from(c.masked) << i;
                }
                mask
            }
            _ => 0xff,
        }
    }

    /// Status: TC bits 0-3 (cleared by this read), request bits 4-7.
    fn read_status(&mut self) -> u8 {
        let mut status = 0;
        for (i, c) in self.channels_mut().into_iter().enumerate() {
            status |= u8::from(c.terminal_count) << i | u8::from(c.request) << (i + 4);
            c.terminal_count = false;
        }
        status
    }

    /// Write register `reg` (0-15, the port offset on controller 1).
    pub fn write(&mut self, reg: u8, value: u8) {
        let select = usize::from(value & 3);
        match reg {
            0..=7 => {
                let high = self.toggle();
                let Some(c) = self.channel_mut(usize::from(reg >> 1)) else {
                    return;
                };
                let (base, current) = if reg & 1 == 0 {
                    (&mut c.base_address, &mut c.current_address)
                } else {
                    (&mut c.base_count, &mut c.current_count)
                };
                *base = if high {
                    (*base & 0x00ff) | u16::from(value) << 8
                } else {
                    (*base & 0xff00) | u16::from(value)
                };
                *current = *base;
            }
            8 => self.command = value,
            9 => {
                if let Some(c) = self.channel_mut(select) {
                    c.request = value & 4 != 0;
                }
            }
            0xa => {
                if let Some(c) = self.channel_mut(select) {
                    c.masked = value & 4 != 0;
                }
            }
            0xb => {
                if let Some(c) = self.channel_mut(select) {
                    c.mode = value & 0xfc;
                }
            }
            0xc => self.flip_flop = false,
            0xd => self.master_clear(),
            0xe => self
                .channels_mut()
                .into_iter()
                .for_each(|c| c.masked = false),
            0xf => {
                for (i, c) in self.channels_mut().into_iter().enumerate() {
                    c.masked = value & (1 << i) != 0;
                }
            }
            _ => {}
        }
    }

    /// Master clear: command, status, requests, temporary and flip-flop cleared, all masked.
    fn master_clear(&mut self) {
        self.command = 0;
        self.flip_flop = false;
        self.temporary = 0;
        for c in self.channels_mut() {
            c.masked = true;
            c.request = false;
            c.terminal_count = false;
        }
    }

    /// Run channel `index` for up to `buf.len()` bytes; see [`crate::Dma::transfer`].
    pub(crate) fn transfer(
        &mut self,
        index: usize,
        page: u8,
        word: bool,
        buf: &mut [u8],
        ctx: &mut dyn DeviceContext,
    ) -> DmaTransfer {
        let Some(c) = self.channel_mut(index) else {
            return DmaTransfer::default();
        };
        let unit = if word { 2 } else { 1 };
        let left = u32::from(c.current_count) + 1;
        let units = ((buf.len() / unit) as u32).min(left);
        let kind = c.transfer_type();
        for i in 0..units as usize {
            let addr = physical(page, c.current_address, word);
            let bytes = &mut buf[i * unit..(i + 1) * unit];
            // A cycle to an address with no RAM behind it moves nothing, as on the bus.
            let _ = match kind {
                TransferType::Write => ctx.dma_write(addr, bytes),
                TransferType::Read => ctx.dma_read(addr, bytes),
                TransferType::Verify | TransferType::Illegal => Ok(()),
            };
            c.current_address = if c.decrement() {
                c.current_address.wrapping_sub(1)
            } else {
                c.current_address.wrapping_add(1)
            };
            c.current_count = c.current_count.wrapping_sub(1);
        }
        let terminal_count = units == left;
        if terminal_count {
            c.terminal_count = true;
            c.request = false;
            if c.auto_init() {
                c.current_address = c.base_address;
                c.current_count = c.base_count;
            } else {
                c.masked = true;
            }
        }
        DmaTransfer {
            bytes: units as usize * unit,
            terminal_count,
        }
    }
}

/// Guest physical address of a channel's current transfer: on the 16-bit controller the
/// address counter drives A1-A16 and the page register A17-A23.
fn physical(page: u8, address: u16, word: bool) -> u64 {
    if word {
        u64::from(page & 0xfe) << 16 | u64::from(address) << 1
    } else {
        u64::from(page) << 16 | u64::from(address)
    }
}
