//! The shared address layout of a differential run and the register context both sides
//! load before a sequence and store after it. The same linear addresses are used natively
//! (fixed mappings in the child process) and in the interpreter (page tables), so pointers
//! that land in registers compare equal.

/// Data the generated memory operands address (through the reserved base register).
pub const DATA: u64 = 0x1000_0000;
pub const DATA_BYTES: usize = 0x2000;
/// The stack page; RSP starts in its middle.
pub const STACK: u64 = 0x1000_4000;
pub const STACK_BYTES: usize = 0x1000;
pub const STACK_START: u64 = STACK + 0x800;
/// Code: the trampoline's page, then the sequence's pages.
pub const CODE: u64 = 0x1001_0000;
pub const CODE_BYTES: usize = 0x4000;
/// Where a generated sequence starts (it ends with a jump back to the trampoline's exit).
pub const SEQ: u64 = CODE + 0x1000;
pub const SEQ_MAX: usize = CODE_BYTES - 0x1000;
/// The native child's register context (see [`Context`]).
pub const CTX: u64 = 0x1002_0000;
pub const CTX_BYTES: usize = 0x2000;
/// The native child's signal stack.
pub const ALTSTACK: u64 = 0x1003_0000;
pub const ALTSTACK_BYTES: usize = 0x1_0000;
/// Data and stack bytes, concatenated, as both sides report them.
pub const MEM_BYTES: usize = DATA_BYTES + STACK_BYTES;

/// `vector` when the sequence ran to its end.
pub const NO_FAULT: u64 = u64::MAX;
/// `vector` when the native child died outside the sequence (a harness problem).
pub const CHILD_DIED: u64 = u64::MAX - 1;

/// Register context in the layout the native trampoline addresses with absolute offsets.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Context {
    /// RAX..R15 in encoding order (RSP at index 4).
    pub gpr: [u64; 16],
    pub rflags: u64,
    /// Native only: the host stack pointer while the sequence runs.
    pub host_rsp: u64,
    /// Exception vector of the fault that stopped the sequence, or [`NO_FAULT`].
    pub vector: u64,
    pub error_code: u64,
    /// Address of the faulting instruction.
    pub fault_rip: u64,
    /// CR2 for #PF.
    pub fault_addr: u64,
    pub reserved: [u64; 10],
    /// FXSAVE64 image: x87, MXCSR, XMM0-15.
    pub fx: [u8; 512],
    /// Native only: the host's own FXSAVE image, restored on the way out.
    pub host_fx: [u8; 512],
}

pub mod off {
    pub const GPR: u64 = 0;
    pub const RFLAGS: u64 = 128;
    pub const HOST_RSP: u64 = 136;
    pub const VECTOR: u64 = 144;
    pub const FX: u64 = 256;
    pub const HOST_FX: u64 = 768;
    /// `reserved[2]`: the m16:32 far pointer to the 32-bit sequence.
    pub const FARPTR: u64 = 176 + 16;
    /// Scratch stack for the trampoline's PUSHFQ/POPFQ, at the end of the context page.
    pub const SCRATCH_TOP: u64 = 0x1ff0;
    pub const X87_FCW: usize = 0;
    pub const X87_FSW: usize = 2;
    pub const X87_FTW: usize = 4;
    pub const MXCSR: usize = 24;
    pub const ST: usize = 32;
    pub const XMM: usize = 160;
}

impl Default for Context {
    fn default() -> Self {
        Self {
            gpr: [0; 16],
            rflags: 2,
            host_rsp: 0,
            vector: NO_FAULT,
            error_code: 0,
            fault_rip: 0,
            fault_addr: 0,
            reserved: [0; 10],
            fx: [0; 512],
            host_fx: [0; 512],
        }
    }
}

impl Context {
    #[must_use]
    pub fn xmm(&self, i: usize) -> u128 {
        let at = off::XMM + 16 * (i & 15);
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.fx[at..at + 16]);
        u128::from_le_bytes(b)
    }
    pub fn set_xmm(&mut self, i: usize, v: u128) {
        let at = off::XMM + 16 * (i & 15);
        self.fx[at..at + 16].copy_from_slice(&v.to_le_bytes());
    }
    #[must_use]
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes([self.fx[24], self.fx[25], self.fx[26], self.fx[27]])
    }
    #[must_use]
    pub fn fault(&self) -> Option<u64> {
        (self.vector != NO_FAULT).then_some(self.vector)
    }
}

const _: () = assert!(std::mem::offset_of!(Context, fx) == off::FX as usize);
const _: () = assert!(std::mem::offset_of!(Context, host_fx) == off::HOST_FX as usize);
const _: () = assert!(std::mem::offset_of!(Context, vector) == off::VECTOR as usize);
const _: () = assert!(std::mem::size_of::<Context>() <= CTX_BYTES);

/// Exceptions that push an error code.
#[must_use]
pub fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}
