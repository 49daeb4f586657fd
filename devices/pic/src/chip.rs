//! One 8259A: its registers, initialization sequence, priority logic and commands.

use serde::{Deserialize, Serialize};

/// Where a chip stands in its initialization sequence (ICW1 starts it).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InitStep {
    /// Initialized: data port writes are OCW1 (the mask).
    #[default]
    Ready,
    /// The next data port write is ICW2 (vector base).
    Icw2,
    /// The next data port write is ICW3 (cascade wiring).
    Icw3,
    /// The next data port write is ICW4 (mode).
    Icw4,
}

/// The guest-visible registers and modes of one 8259A.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChipState {
    /// Interrupt request register.
    pub irr: u8,
    /// In-service register.
    pub isr: u8,
    /// Interrupt mask register (OCW1).
    pub imr: u8,
    /// Levels of the eight IR inputs as last driven.
    pub inputs: u8,
    /// Edge/level control register of the chipset (ELCR): 1 = level triggered.
    pub elcr: u8,
    /// ICW2 with its low three bits cleared: vector of IR0.
    pub vector_base: u8,
    /// ICW3: on a master, which IR inputs have slaves; on a slave, its cascade identity.
    pub cascade: u8,
    pub init: InitStep,
    /// ICW1 IC4: an ICW4 follows.
    pub icw4_expected: bool,
    /// ICW1 SNGL: no cascade, no ICW3.
    pub single: bool,
    /// ICW1 LTIM: every input level triggered.
    pub level_triggered: bool,
    /// ICW4 uPM: 8086 mode (the PC's) rather than MCS-80/85.
    pub x86_mode: bool,
    /// ICW4 AEOI.
    pub auto_eoi: bool,
    /// ICW4 BUF.
    pub buffered: bool,
    /// ICW4 M/S (only meaningful when buffered).
    pub buffer_master: bool,
    /// ICW4 SFNM.
    pub special_fully_nested: bool,
    /// OCW2 "rotate in automatic EOI mode".
    pub rotate_on_auto_eoi: bool,
    /// The IR with the lowest priority (the highest is the one after it, modulo 8).
    pub lowest_priority: u8,
    /// OCW3 RR/RIS: the command port reads ISR (else IRR).
    pub read_isr: bool,
    /// OCW3 P: the next read is a poll.
    pub poll: bool,
    /// OCW3 SMM: special mask mode.
    pub special_mask: bool,
}

impl Default for ChipState {
    fn default() -> Self {
        Self {
            irr: 0,
            isr: 0,
            imr: 0,
            inputs: 0,
            elcr: 0,
            vector_base: 0,
            cascade: 0,
            init: InitStep::Ready,
            icw4_expected: false,
            single: false,
            level_triggered: false,
            x86_mode: false,
            auto_eoi: false,
            buffered: false,
            buffer_master: false,
            special_fully_nested: false,
            rotate_on_auto_eoi: false,
            lowest_priority: 7,
            read_isr: false,
            poll: false,
            special_mask: false,
        }
    }
}

fn bit(ir: u8) -> u8 {
    1 << (ir & 7)
}

impl ChipState {
    /// Inputs that are level triggered (LTIM makes all of them so).
    pub fn level_mask(&self) -> u8 {
        if self.level_triggered {
            0xff
        } else {
            self.elcr
        }
    }

    /// Priority rank of an IR: 0 is the highest.
    fn rank(&self, ir: u8) -> u8 {
        ir.wrapping_sub(self.lowest_priority).wrapping_sub(1) & 7
    }

    /// The highest-priority IR among `bits`.
    fn highest(&self, bits: u8) -> Option<u8> {
        (1..=8u8)
            .map(|i| self.lowest_priority.wrapping_add(i) & 7)
            .find(|&ir| bits & bit(ir) != 0)
    }

    /// Drive one IR input. Edge-triggered inputs latch a request on a rising edge; as on the
    /// 8259A, the request goes away again if the input falls before it is acknowledged.
    pub fn set_input(&mut self, ir: u8, level: bool) {
        let mask = bit(ir);
        let was_high = self.inputs & mask != 0;
        if level {
            self.inputs |= mask;
            if self.level_mask() & mask != 0 || !was_high {
                self.irr |= mask;
            }
        } else {
            self.inputs &= !mask;
            self.irr &= !mask;
        }
    }

    /// Re-derive the requests of level-triggered inputs after the trigger mode changed.
    pub fn refresh_levels(&mut self) {
        let level = self.level_mask();
        self.irr = (self.irr & !level) | (self.inputs & level);
    }

    /// The IR this chip would signal on INT now, if any.
    pub fn requested(&self, is_master: bool) -> Option<u8> {
        let best = self.highest(self.irr & !self.imr)?;
        let mut blocking = self.isr;
        if self.special_mask {
            blocking &= !self.imr;
        }
        if is_master && self.special_fully_nested {
            blocking &= !self.cascade;
        }
        match self.highest(blocking) {
            Some(current) if self.rank(current) <= self.rank(best) => None,
            _ => Some(best),
        }
    }

    /// The interrupt acknowledge of `ir`: in service (unless auto-EOI), request consumed.
    pub fn acknowledge(&mut self, ir: u8) {
        let mask = bit(ir);
        if self.level_mask() & mask == 0 {
            self.irr &= !mask;
        }
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.lowest_priority = ir & 7;
            }
        } else {
            self.isr |= mask;
        }
    }

    /// A poll read: like an acknowledge, answering `0x80 | IR`, or 0 if nothing is requested.
    pub fn poll_read(&mut self, is_master: bool) -> u8 {
        self.poll = false;
        match self.requested(is_master) {
            Some(ir) => {
                self.acknowledge(ir);
                0x80 | ir
            }
            None => 0,
        }
    }

    fn non_specific_eoi(&mut self, rotate: bool) {
        if let Some(ir) = self.highest(self.isr) {
            self.isr &= !bit(ir);
            if rotate {
                self.lowest_priority = ir;
            }
        }
    }

    /// A write to the command port (A0 = 0): ICW1, OCW2 or OCW3.
    pub fn write_command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            self.icw1(value);
        } else if value & 0x08 != 0 {
            self.ocw3(value);
        } else {
            self.ocw2(value);
        }
    }

    fn icw1(&mut self, value: u8) {
        self.icw4_expected = value & 0x01 != 0;
        self.single = value & 0x02 != 0;
        self.level_triggered = value & 0x08 != 0;
        self.imr = 0;
        self.isr = 0;
        // The edge sense latches are reset: an input already high must fall and rise again.
        self.irr = 0;
        self.refresh_levels();
        self.lowest_priority = 7;
        self.special_mask = false;
        self.read_isr = false;
        self.poll = false;
        self.rotate_on_auto_eoi = false;
        if !self.icw4_expected {
            self.x86_mode = false;
            self.auto_eoi = false;
            self.buffered = false;
            self.buffer_master = false;
            self.special_fully_nested = false;
        }
        self.init = InitStep::Icw2;
    }

    fn ocw2(&mut self, value: u8) {
        let ir = value & 7;
        match value >> 5 {
            0b001 => self.non_specific_eoi(false),
            0b011 => self.isr &= !bit(ir),
            0b101 => self.non_specific_eoi(true),
            0b100 => self.rotate_on_auto_eoi = true,
            0b000 => self.rotate_on_auto_eoi = false,
            0b111 => {
                self.isr &= !bit(ir);
                self.lowest_priority = ir;
            }
            0b110 => self.lowest_priority = ir,
            _ => {} // 0b010: no operation
        }
    }

    fn ocw3(&mut self, value: u8) {
        if value & 0x40 != 0 {
            self.special_mask = value & 0x20 != 0;
        }
        if value & 0x04 != 0 {
            self.poll = true;
        }
        match value & 0x03 {
            0b10 => self.read_isr = false,
            0b11 => self.read_isr = true,
            _ => {}
        }
    }

    /// A write to the data port (A0 = 1): the next ICW, or OCW1.
    pub fn write_data(&mut self, value: u8) {
        self.init = match self.init {
            InitStep::Ready => {
                self.imr = value;
                InitStep::Ready
            }
            InitStep::Icw2 => {
                self.vector_base = value & 0xf8;
                if !self.single {
                    InitStep::Icw3
                } else if self.icw4_expected {
                    InitStep::Icw4
                } else {
                    InitStep::Ready
                }
            }
            InitStep::Icw3 => {
                self.cascade = value;
                if self.icw4_expected {
                    InitStep::Icw4
                } else {
                    InitStep::Ready
                }
            }
            InitStep::Icw4 => {
                self.x86_mode = value & 0x01 != 0;
                self.auto_eoi = value & 0x02 != 0;
                self.buffer_master = value & 0x04 != 0;
                self.buffered = value & 0x08 != 0;
                self.special_fully_nested = value & 0x10 != 0;
                InitStep::Ready
            }
        };
    }

    /// A read of the command port: poll result, ISR or IRR.
    pub fn read_command(&mut self, is_master: bool) -> u8 {
        if self.poll {
            self.poll_read(is_master)
        } else if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }

    /// A read of the data port: poll result or IMR.
    pub fn read_data(&mut self, is_master: bool) -> u8 {
        if self.poll {
            self.poll_read(is_master)
        } else {
            self.imr
        }
    }
}
