//! Register files of MOO tests, modelled on the chunks' bitmasks: a register is present
//! when its bit is set in `mask`, and the bit numbers are the ones `MOO_FORMAT.md` gives.

/// The 16-bit register file of a `REGS` (or `RMSK`) chunk. The discriminant is the bit in
/// the chunk's mask: bit 0 = AX, bit 1 = BX, ... bit 13 = FLAGS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reg16 {
    Ax = 0,
    Bx = 1,
    Cx = 2,
    Dx = 3,
    Cs = 4,
    Ss = 5,
    Ds = 6,
    Es = 7,
    Sp = 8,
    Bp = 9,
    Si = 10,
    Di = 11,
    Ip = 12,
    Flags = 13,
}

impl Reg16 {
    /// All registers in mask-bit order.
    pub const ALL: [Reg16; 14] = [
        Reg16::Ax,
        Reg16::Bx,
        Reg16::Cx,
        Reg16::Dx,
        Reg16::Cs,
        Reg16::Ss,
        Reg16::Ds,
        Reg16::Es,
        Reg16::Sp,
        Reg16::Bp,
        Reg16::Si,
        Reg16::Di,
        Reg16::Ip,
        Reg16::Flags,
    ];

    /// The register for a mask bit, `None` for bits the format does not define.
    #[must_use]
    pub fn from_bit(bit: u32) -> Option<Reg16> {
        Reg16::ALL.get(bit as usize).copied()
    }

    /// Lowercase name as in the suite's JSON form ("ax", ..., "flags").
    #[must_use]
    pub fn name(self) -> &'static str {
        [
            "ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags",
        ][self as usize]
    }
}

/// A 16-bit register file with its presence mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs16 {
    /// Bit `r as u8` set = register `r` present.
    pub mask: u16,
    /// Values by register (`values[r as usize]`); 0 for absent registers.
    pub values: [u16; 14],
}

impl Regs16 {
    /// The value of `reg`, if present.
    #[must_use]
    pub fn get(&self, reg: Reg16) -> Option<u16> {
        (self.mask & (1 << reg as u8) != 0).then(|| self.values[reg as usize])
    }

    /// Sets `reg` and marks it present.
    pub fn set(&mut self, reg: Reg16, value: u16) {
        self.mask |= 1 << reg as u8;
        self.values[reg as usize] = value;
    }

    /// The present registers with their values, in mask-bit order.
    pub fn iter(&self) -> impl Iterator<Item = (Reg16, u16)> + '_ {
        Reg16::ALL
            .into_iter()
            .filter_map(|r| self.get(r).map(|v| (r, v)))
    }

    /// True if every register is present (as in an initial state).
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.mask == (1 << Reg16::ALL.len()) - 1
    }
}

/// The 32-bit register file of an `RG32` (or `RM32`) chunk (386 tests). The discriminant
/// is the bit in the chunk's mask. For segment registers only the low 16 bits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reg32 {
    Cr0 = 0,
    Cr3 = 1,
    Eax = 2,
    Ebx = 3,
    Ecx = 4,
    Edx = 5,
    Esi = 6,
    Edi = 7,
    Ebp = 8,
    Esp = 9,
    Cs = 10,
    Ds = 11,
    Es = 12,
    Fs = 13,
    Gs = 14,
    Ss = 15,
    Eip = 16,
    Eflags = 17,
    Dr6 = 18,
    Dr7 = 19,
}

impl Reg32 {
    /// All registers in mask-bit order.
    pub const ALL: [Reg32; 20] = [
        Reg32::Cr0,
        Reg32::Cr3,
        Reg32::Eax,
        Reg32::Ebx,
        Reg32::Ecx,
        Reg32::Edx,
        Reg32::Esi,
        Reg32::Edi,
        Reg32::Ebp,
        Reg32::Esp,
        Reg32::Cs,
        Reg32::Ds,
        Reg32::Es,
        Reg32::Fs,
        Reg32::Gs,
        Reg32::Ss,
        Reg32::Eip,
        Reg32::Eflags,
        Reg32::Dr6,
        Reg32::Dr7,
    ];

    /// The register for a mask bit, `None` for bits the format does not define.
    #[must_use]
    pub fn from_bit(bit: u32) -> Option<Reg32> {
        Reg32::ALL.get(bit as usize).copied()
    }
}

/// A 32-bit register file with its presence mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs32 {
    /// Bit `r as u8` set = register `r` present.
    pub mask: u32,
    /// Values by register; 0 for absent registers.
    pub values: [u32; 20],
}

impl Regs32 {
    /// The value of `reg`, if present.
    #[must_use]
    pub fn get(&self, reg: Reg32) -> Option<u32> {
        (self.mask & (1 << reg as u8) != 0).then(|| self.values[reg as usize])
    }

    /// Sets `reg` and marks it present.
    pub fn set(&mut self, reg: Reg32, value: u32) {
        self.mask |= 1 << reg as u8;
        self.values[reg as usize] = value;
    }

    /// The present registers with their values, in mask-bit order.
    pub fn iter(&self) -> impl Iterator<Item = (Reg32, u32)> + '_ {
        Reg32::ALL
            .into_iter()
            .filter_map(|r| self.get(r).map(|v| (r, v)))
    }
}
