//! Runs sequences on the host CPU in a forked child process: a trampoline (assembled with
//! iced) loads every GPR, RFLAGS, x87/MXCSR/XMM state (FXRSTOR) from a context block at a
//! fixed address, runs the sequence, and stores everything back (FXSAVE). A fault in the
//! sequence is caught by a signal handler that records the vector (the kernel's trap
//! number), error code and the state at the fault, then resumes at the trampoline's exit.
//! A child that dies anyway costs one job, never the test.

use super::layout::{self, off, Context, CHILD_DIED, CTX, MEM_BYTES, SEQ_MAX};
use iced_x86::code_asm::*;
use std::sync::OnceLock;

/// One job: code and initial state in, final state out (shared with the child).
#[repr(C, align(64))]
pub struct Slot {
    pub ctx: Context,
    pub code_len: u64,
    /// 0 pending, 1 running, 2 done.
    pub state: u64,
    /// 64: the sequence is 64-bit code; 32: compatibility-mode code (entered through 0x23).
    pub bitness: u64,
    pub mem: [u8; MEM_BYTES],
    pub code: [u8; SEQ_MAX],
}

/// Addresses inside the trampoline.
#[derive(Clone, Copy, Debug)]
pub struct Trampoline {
    pub entry: u64,
    /// Entry for 32-bit sequences: a far jump to Linux's compatibility code selector 0x23.
    pub entry32: u64,
    /// Where a sequence jumps when it is done (32-bit code: far, through selector 0x33).
    pub exit: u64,
    recover: u64,
}

/// Linux's user code selectors: 32-bit compatibility mode and 64-bit mode; user data.
pub const USER_CS32: u16 = 0x23;
pub const USER_CS64: u16 = 0x33;
pub const USER_DS: u16 = 0x2b;

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error("the host is not x86-64 Linux")]
    Unsupported,
    #[error("cannot map the fixed region at {addr:#x}: {err}")]
    Map { addr: u64, err: std::io::Error },
    #[error("cannot assemble the trampoline: {0}")]
    Asm(String),
    #[error("fork failed: {0}")]
    Fork(std::io::Error),
}

fn abs(at: u64) -> AsmMemoryOperand {
    qword_ptr(CTX + at)
}

const REGS: [AsmRegister64; 16] = [
    rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15,
];

/// Save the host's callee-saved registers and x87/SSE state, load the sequence's state
/// (`compat`: with the data segments 32-bit code needs).
fn load_state(a: &mut CodeAssembler, compat: bool) -> Result<(), IcedError> {
    for r in [rbx, rbp, r12, r13, r14, r15] {
        a.push(r)?;
    }
    a.mov(abs(off::HOST_RSP), rsp)?;
    a.fxsave64(abs(off::HOST_FX))?;
    a.fxrstor64(abs(off::FX))?;
    if compat {
        // Linux runs 64-bit code with null DS/ES; 32-bit code needs real ones.
        a.mov(eax, u32::from(USER_DS))?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
    }
    a.mov(rsp, CTX + off::SCRATCH_TOP)?;
    a.push(abs(off::RFLAGS))?;
    a.popfq()?;
    for (i, &r) in REGS.iter().enumerate() {
        if i != 4 {
            a.mov(r, abs(off::GPR + 8 * i as u64))?;
        }
    }
    a.mov(rsp, abs(off::GPR + 32))
}

/// The trampoline's code, assembled for `layout::CODE`.
fn assemble_trampoline() -> Result<(Vec<u8>, Trampoline), IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut exit = a.create_label();
    let mut recover = a.create_label();
    let mut entry32 = a.create_label();
    load_state(&mut a, false)?;
    a.jmp(layout::SEQ)?;
    a.set_label(&mut entry32)?;
    load_state(&mut a, true)?;
    // JMP FAR m16:32 through the context's far pointer (0x23:SEQ).
    a.jmp(fword_ptr(CTX + off::FARPTR))?;
    a.set_label(&mut exit)?;
    for (i, &r) in REGS.iter().enumerate() {
        a.mov(abs(off::GPR + 8 * i as u64), r)?;
    }
    a.mov(rsp, CTX + off::SCRATCH_TOP)?;
    a.pushfq()?;
    a.pop(abs(off::RFLAGS))?;
    a.fxsave64(abs(off::FX))?;
    a.set_label(&mut recover)?;
    a.mov(rsp, abs(off::HOST_RSP))?;
    // Host code gets clean flags (DF, AC, NT clear) and its null data segments back.
    a.push(0x202)?;
    a.popfq()?;
    a.mov(eax, 0u32)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.fxrstor64(abs(off::HOST_FX))?;
    for r in [r15, r14, r13, r12, rbp, rbx] {
        a.pop(r)?;
    }
    a.ret()?;
    let res = a.assemble_options(
        layout::CODE,
        iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
    )?;
    let t = Trampoline {
        entry: layout::CODE,
        entry32: res.label_ip(&entry32)?,
        exit: res.label_ip(&exit)?,
        recover: res.label_ip(&recover)?,
    };
    Ok((res.inner.code_buffer, t))
}

/// Map the fixed regions (once per process) and write the trampoline.
pub fn trampoline() -> Result<Trampoline, &'static NativeError> {
    static T: OnceLock<Result<Trampoline, NativeError>> = OnceLock::new();
    T.get_or_init(setup).as_ref().map(|t| *t)
}

fn setup() -> Result<Trampoline, NativeError> {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return Err(NativeError::Unsupported);
    }
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let regions = [
        (layout::DATA, layout::DATA_BYTES, rw),
        (layout::STACK, layout::STACK_BYTES, rw),
        (layout::CODE, layout::CODE_BYTES, rw | libc::PROT_EXEC),
        (CTX, layout::CTX_BYTES, rw),
        (layout::ALTSTACK, layout::ALTSTACK_BYTES, rw),
    ];
    for (addr, len, prot) in regions {
        map_fixed(addr, len, prot)?;
    }
    let (code, t) = assemble_trampoline().map_err(|e| NativeError::Asm(e.to_string()))?;
    if code.len() > 0x1000 {
        return Err(NativeError::Asm("trampoline larger than a page".into()));
    }
    // SAFETY: the code page was just mapped writable at this fixed address, a page long.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), layout::CODE as *mut u8, code.len()) };
    Ok(t)
}

fn map_fixed(addr: u64, len: usize, prot: i32) -> Result<(), NativeError> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let p = unsafe { libc::mmap(addr as *mut _, len, prot, flags, -1, 0) };
    if p == libc::MAP_FAILED || p as u64 != addr {
        return Err(NativeError::Map {
            addr,
            err: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Jobs in memory shared with the child.
pub struct Batch {
    slots: *mut Slot,
    len: usize,
}

impl Batch {
    pub fn new(len: usize) -> Result<Self, NativeError> {
        let bytes = len.max(1) * std::mem::size_of::<Slot>();
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a fresh anonymous mapping; zero bytes are a valid `Slot`.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), bytes, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(NativeError::Map {
                addr: 0,
                err: std::io::Error::last_os_error(),
            });
        }
        Ok(Self {
            slots: p.cast(),
            len: len.max(1),
        })
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn slot(&mut self, i: usize) -> &mut Slot {
        assert!(i < self.len);
        // SAFETY: in bounds of the mapping; the child is not running while we hold this.
        unsafe { &mut *self.slots.add(i) }
    }

    /// Run slots `0..n` on the host CPU; each slot's `ctx` and `mem` then hold the result.
    pub fn run(&mut self, n: usize, t: Trampoline) -> Result<(), NativeError> {
        let n = n.min(self.len);
        for i in 0..n {
            self.slot(i).state = 0;
        }
        let mut start = 0;
        while start < n {
            // SAFETY: the child only touches the fixed mappings and the shared slots, and
            // calls async-signal-safe functions before `_exit`.
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                return Err(NativeError::Fork(std::io::Error::last_os_error()));
            }
            if pid == 0 {
                // SAFETY: see above; never returns.
                unsafe { child(self.slots, start, n, t) };
            }
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                break;
            }
            // The child died: the running slot is lost, the rest go to a new child.
            let dead = (start..n).find(|&i| self.slot(i).state == 1).unwrap_or(n);
            if dead < n {
                let s = self.slot(dead);
                s.ctx.vector = CHILD_DIED;
                s.ctx.error_code = status as u64;
                s.state = 2;
            }
            start = dead + 1;
        }
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let bytes = self.len * std::mem::size_of::<Slot>();
        // SAFETY: unmapping what `new` mapped.
        unsafe { libc::munmap(self.slots.cast(), bytes) };
    }
}

/// The child: run slots `start..n`, then exit. Allocates nothing.
unsafe fn child(slots: *mut Slot, start: usize, n: usize, t: Trampoline) -> ! {
    let alt = libc::stack_t {
        ss_sp: layout::ALTSTACK as *mut _,
        ss_flags: 0,
        ss_size: layout::ALTSTACK_BYTES,
    };
    libc::sigaltstack(&alt, std::ptr::null_mut());
    for sig in [
        libc::SIGSEGV,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGBUS,
        libc::SIGTRAP,
    ] {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction =
            on_fault as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
    // A runaway child is killed rather than hanging the test.
    libc::alarm(20);
    let ctx = CTX as *mut Context;
    let entry64: extern "C" fn() = std::mem::transmute(t.entry as usize);
    let entry32: extern "C" fn() = std::mem::transmute(t.entry32 as usize);
    for i in start..n {
        let s = slots.add(i);
        std::ptr::write_volatile(&mut (*s).state, 1);
        std::ptr::copy_nonoverlapping(&(*s).ctx, ctx, 1);
        (*ctx).vector = layout::NO_FAULT;
        (*ctx).reserved[0] = t.recover;
        (*ctx).reserved[2] = layout::SEQ | u64::from(USER_CS32) << 32;
        let mem = (*s).mem.as_ptr();
        std::ptr::copy_nonoverlapping(mem, layout::DATA as *mut u8, layout::DATA_BYTES);
        std::ptr::copy_nonoverlapping(
            mem.add(layout::DATA_BYTES),
            layout::STACK as *mut u8,
            layout::STACK_BYTES,
        );
        let len = ((*s).code_len as usize).min(SEQ_MAX);
        std::ptr::copy_nonoverlapping((*s).code.as_ptr(), layout::SEQ as *mut u8, len);
        if (*s).bitness == 32 {
            entry32();
        } else {
            entry64();
        }
        std::ptr::copy_nonoverlapping(ctx, &mut (*s).ctx, 1);
        let out = (*s).mem.as_mut_ptr();
        std::ptr::copy_nonoverlapping(layout::DATA as *const u8, out, layout::DATA_BYTES);
        std::ptr::copy_nonoverlapping(
            layout::STACK as *const u8,
            out.add(layout::DATA_BYTES),
            layout::STACK_BYTES,
        );
        std::ptr::write_volatile(&mut (*s).state, 2);
    }
    libc::_exit(0)
}

/// GPR indices of `ucontext` in x86 encoding order.
const GREGS: [i32; 16] = [
    libc::REG_RAX,
    libc::REG_RCX,
    libc::REG_RDX,
    libc::REG_RBX,
    libc::REG_RSP,
    libc::REG_RBP,
    libc::REG_RSI,
    libc::REG_RDI,
    libc::REG_R8,
    libc::REG_R9,
    libc::REG_R10,
    libc::REG_R11,
    libc::REG_R12,
    libc::REG_R13,
    libc::REG_R14,
    libc::REG_R15,
];

extern "C" fn on_fault(_sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid ucontext; the context page is mapped in the child.
    unsafe {
        // The kernel keeps the sequence's AC: clear it before any misaligned access of ours.
        std::arch::asm!("pushfq", "and dword ptr [rsp], 0xfffbffff", "popfq");
        let uc = &mut *uc.cast::<libc::ucontext_t>();
        let g = &mut uc.uc_mcontext.gregs;
        let ctx = &mut *(CTX as *mut Context);
        for (i, &r) in GREGS.iter().enumerate() {
            ctx.gpr[i] = g[r as usize] as u64;
        }
        ctx.rflags = g[libc::REG_EFL as usize] as u64;
        ctx.vector = g[libc::REG_TRAPNO as usize] as u64;
        ctx.error_code = g[libc::REG_ERR as usize] as u64;
        ctx.fault_rip = g[libc::REG_RIP as usize] as u64;
        ctx.fault_addr = g[libc::REG_CR2 as usize] as u64;
        let fp = uc.uc_mcontext.fpregs;
        if !fp.is_null() {
            std::ptr::copy_nonoverlapping(fp.cast::<u8>(), ctx.fx.as_mut_ptr(), 512);
        }
        g[libc::REG_RIP as usize] = ctx.reserved[0] as i64;
        // A fault in 32-bit code: resume the trampoline in 64-bit mode.
        let csgsfs = &mut g[libc::REG_CSGSFS as usize];
        *csgsfs = (*csgsfs & !0xffff) | i64::from(USER_CS64);
        // TF, DF, NT, AC off for the host code the trampoline returns to.
        g[libc::REG_EFL as usize] &= !((1 << 8) | (1 << 10) | (1 << 14) | (1 << 18));
    }
}
