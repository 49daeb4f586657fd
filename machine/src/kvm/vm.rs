//! The KVM virtual machine: opening /dev/kvm, checking what Nestor needs of it, and the memory
//! slots laid over the very pages the interpreter uses (split around watched pages while the
//! debugger has watchpoints: see `debug::watch`).

use super::KvmError;
use crate::memory::{GuestMemory, FOUR_GIB};
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_READONLY};
use kvm_ioctls::{Cap, Kvm, VmFd};
use memmap2::MmapMut;
use nestor_cpu::PageTarget;

/// Where VMX keeps its real-mode TSS (three pages) and EPT identity map (one page): just
/// below the LAPIC/IOAPIC/HPET windows' end and clear of a 1 MiB ROM, as QEMU places them.
const IDENTITY_MAP_ADDR: u64 = 0xfeff_c000;
const TSS_ADDR: usize = 0xfeff_d000;
/// The legacy VGA window and option-ROM area: never RAM (matches memory.rs).
const LEGACY_HOLE_START: u64 = 0xa_0000;
const ONE_MIB: u64 = 0x10_0000;
/// How much of the ROM appears below 1 MiB (matches memory.rs).
const LOW_ROM_MAX: u64 = 128 << 10;

/// Capabilities the engine cannot work without, with the words of the error message.
const NEEDED: [(Cap, &str); 7] = [
    (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
    (Cap::SetTssAddr, "KVM_CAP_SET_TSS_ADDR"),
    (Cap::SetIdentityMapAddr, "KVM_CAP_SET_IDENTITY_MAP_ADDR"),
    (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID"),
    (Cap::ReadonlyMem, "KVM_CAP_READONLY_MEM"),
    (Cap::VcpuEvents, "KVM_CAP_VCPU_EVENTS"),
    (Cap::Debugregs, "KVM_CAP_DEBUGREGS"),
];

/// Open /dev/kvm and check every capability the engine uses.
pub fn open() -> Result<Kvm, KvmError> {
    let kvm = Kvm::new().map_err(|e| KvmError::Open(e.to_string()))?;
    let version = kvm.get_api_version();
    if version < 0 {
        return Err(KvmError::Open(
            "it is not a KVM device (KVM_GET_API_VERSION fails)".into(),
        ));
    }
    if version != 12 {
        return Err(KvmError::Api(version));
    }
    for (cap, name) in NEEDED {
        if !kvm.check_extension(cap) {
            return Err(KvmError::Capability(name));
        }
    }
    Ok(kvm)
}

/// One KVM VM with guest memory mapped.
pub struct KvmVm {
    pub kvm: Kvm,
    pub fd: VmFd,
    /// The ROM, copied to page-aligned memory (KVM maps only whole host pages; the ROM is
    /// read-only, so a copy is indistinguishable).
    _rom: MmapMut,
    /// The memory map's slots, as [`slots`] made them.
    base: Vec<Slot>,
    /// What KVM has in each of its slot numbers now (watchpoints split the base slots).
    mapped: Vec<Option<Slot>>,
    /// How many slots this KVM allows.
    max_slots: usize,
}

/// A guest-physical range backed by host memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub guest: u64,
    pub size: u64,
    pub host: u64,
    pub read_only: bool,
}

impl KvmVm {
    pub fn new(mem: &mut GuestMemory) -> Result<Self, KvmError> {
        let kvm = open()?;
        let fd = kvm
            .create_vm()
            .map_err(|e| KvmError::Ioctl("KVM_CREATE_VM", e))?;
        fd.set_identity_map_address(IDENTITY_MAP_ADDR)
            .map_err(|e| KvmError::Ioctl("KVM_SET_IDENTITY_MAP_ADDR", e))?;
        fd.set_tss_address(TSS_ADDR)
            .map_err(|e| KvmError::Ioctl("KVM_SET_TSS_ADDR", e))?;
        let rom = copy_rom(mem)?;
        let base = slots(mem, rom.as_ptr() as u64, rom.len() as u64);
        let max_slots = kvm.get_nr_memslots();
        let mut vm = Self {
            kvm,
            fd,
            _rom: rom,
            base: base.clone(),
            mapped: Vec::new(),
            max_slots,
        };
        vm.set_slots(&base)?;
        Ok(vm)
    }

    /// The memory map's own slots (before any watchpoint split them).
    #[must_use]
    pub fn base_slots(&self) -> &[Slot] {
        &self.base
    }

    /// Make KVM's slots exactly `want`, touching only the slots that change.
    pub fn set_slots(&mut self, want: &[Slot]) -> Result<(), KvmError> {
        let (remove, add) = slot_changes(&self.mapped, want);
        for index in remove {
            if let Some(Some(old)) = self.mapped.get(index) {
                self.map(index as u32, Slot { size: 0, ..*old })?;
            }
            self.mapped[index] = None;
        }
        for (index, slot) in add {
            if index >= self.max_slots {
                return Err(KvmError::Layout(
                    "watchpoints need more memory slots than this KVM has",
                ));
            }
            self.map(index as u32, slot)?;
            if self.mapped.len() <= index {
                self.mapped.resize(index + 1, None);
            }
            self.mapped[index] = Some(slot);
        }
        Ok(())
    }

    /// Set KVM's slot `index` to `s` (a size of 0 deletes it).
    fn map(&self, index: u32, s: Slot) -> Result<(), KvmError> {
        let region = kvm_userspace_memory_region {
            slot: index,
            flags: if s.read_only { KVM_MEM_READONLY } else { 0 },
            guest_phys_addr: s.guest,
            memory_size: s.size,
            userspace_addr: s.host,
        };
        // SAFETY: every slot lies inside a mapping that outlives the VM: guest RAM (owned by
        // the board, which the machine keeps as long as the engine) or our own ROM copy.
        unsafe { self.fd.set_user_memory_region(region) }
            .map_err(|e| KvmError::Ioctl("KVM_SET_USER_MEMORY_REGION", e))
    }
}

/// The slot numbers to delete (mapped but not wanted), then the slots to add with the numbers
/// to give them (wanted but not mapped; the lowest free numbers, deletions included). KVM
/// refuses overlapping slots, so deletions go first.
#[must_use]
pub fn slot_changes(mapped: &[Option<Slot>], want: &[Slot]) -> (Vec<usize>, Vec<(usize, Slot)>) {
    let remove: Vec<usize> = mapped
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.filter(|s| !want.contains(s)).map(|_| i))
        .collect();
    let mut free = mapped
        .iter()
        .enumerate()
        .filter(|(i, m)| m.is_none() || remove.contains(i))
        .map(|(i, _)| i)
        .chain(mapped.len()..);
    let add = want
        .iter()
        .filter(|s| !mapped.contains(&Some(**s)))
        .filter_map(|s| free.next().map(|i| (i, *s)))
        .collect();
    (remove, add)
}

/// The ROM image, as the memory map shows it at the top of the 4 GiB space.
fn copy_rom(mem: &GuestMemory) -> Result<MmapMut, KvmError> {
    let len = rom_len(mem);
    let mut copy = MmapMut::map_anon(len.max(1) as usize).map_err(KvmError::Memory)?;
    if len > 0 && !mem.read(FOUR_GIB - len, &mut copy[..len as usize]) {
        return Err(KvmError::Layout("ROM below 4 GiB is not readable"));
    }
    Ok(copy)
}

/// ROM length: the read-only pages that end at 4 GiB (the ROM is mapped there whole).
fn rom_len(mem: &GuestMemory) -> u64 {
    let mut len = 0u64;
    let mut probe = [0u8];
    while len < (16 << 20) && mem.read(FOUR_GIB - len - 1, &mut probe) {
        len += 64 << 10;
    }
    len
}

/// The slots of the memory map: RAM below the VGA hole, RAM from 1 MiB to the PCI hole, RAM
/// above 4 GiB, and read-only ROM at the top of 1 MiB and below 4 GiB. Everything else stays
/// unmapped, so KVM exits on it as MMIO and the board decodes it.
pub fn slots(mem: &mut GuestMemory, rom_host: u64, rom_len: u64) -> Vec<Slot> {
    let mut v = Vec::new();
    let low = mem.low_ram();
    let high = mem.ram_bytes() - low;
    let mut ram = |guest: u64, end: u64, v: &mut Vec<Slot>| {
        if end > guest {
            if let PageTarget::Host { ptr, .. } = mem.page(guest) {
                v.push(Slot {
                    guest,
                    size: end - guest,
                    host: ptr.as_ptr() as u64,
                    read_only: false,
                });
            }
        }
    };
    ram(0, low.min(LEGACY_HOLE_START), &mut v);
    ram(ONE_MIB, low, &mut v);
    ram(FOUR_GIB, FOUR_GIB + high, &mut v);
    if rom_len > 0 {
        let low_rom = rom_len.min(LOW_ROM_MAX);
        v.push(Slot {
            guest: ONE_MIB - low_rom,
            size: low_rom,
            host: rom_host + (rom_len - low_rom),
            read_only: true,
        });
        v.push(Slot {
            guest: FOUR_GIB - rom_len,
            size: rom_len,
            host: rom_host,
            read_only: true,
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cover_ram_and_rom_and_leave_holes() {
        let mut mem = GuestMemory::new(16, vec![0u8; 256 << 10]).expect("memory");
        assert_eq!(rom_len(&mem), 256 << 10);
        let base = match mem.page(0) {
            PageTarget::Host { ptr, .. } => ptr.as_ptr() as u64,
            PageTarget::Mmio => panic!("RAM at 0"),
        };
        let s = slots(&mut mem, 0x7000_0000, 256 << 10);
        assert_eq!(s.len(), 4, "{s:?}");
        assert_eq!((s[0].guest, s[0].size, s[0].host), (0, 0xa_0000, base));
        assert_eq!(
            (s[1].guest, s[1].size, s[1].host),
            (ONE_MIB, (16 << 20) - ONE_MIB, base + ONE_MIB)
        );
        assert_eq!((s[2].guest, s[2].size), (0xe_0000, 128 << 10));
        assert_eq!(
            s[2].host,
            0x7000_0000 + (128 << 10),
            "the top 128K of the ROM"
        );
        assert!(s[2].read_only && s[3].read_only);
        assert_eq!((s[3].guest, s[3].size), (FOUR_GIB - (256 << 10), 256 << 10));
    }

    fn slot(guest: u64, size: u64) -> Slot {
        Slot {
            guest,
            size,
            host: 0x7000_0000 + guest,
            read_only: false,
        }
    }

    #[test]
    fn slot_changes_touch_only_what_differs() {
        let a = slot(0, 0x5000);
        let b = slot(0x5000, 0x1000);
        let c = slot(0x6000, 0x1000);
        let whole = slot(0, 0x7000);
        let mapped = [Some(whole), None, Some(slot(0x10_0000, 0x1000))];
        let want = [a, b, c, slot(0x10_0000, 0x1000)];
        let (remove, add) = slot_changes(&mapped, &want);
        assert_eq!(remove, [0]);
        assert_eq!(
            add,
            [(0, a), (1, b), (3, c)],
            "free numbers first, then new ones"
        );
        let same: Vec<Option<Slot>> = want.iter().copied().map(Some).collect();
        assert_eq!(slot_changes(&same, &want), (vec![], vec![]));
        let (remove, add) = slot_changes(&same, &[whole, slot(0x10_0000, 0x1000)]);
        assert_eq!(remove, [0, 1, 2]);
        assert_eq!(add, [(0, whole)]);
    }

    #[test]
    fn ram_above_the_pci_hole_gets_its_own_slot() {
        let mut mem = GuestMemory::new(4096, vec![0u8; 64 << 10]).expect("memory");
        let s = slots(&mut mem, 0x7000_0000, 64 << 10);
        let high: Vec<_> = s.iter().filter(|x| x.guest == FOUR_GIB).collect();
        assert_eq!(high.len(), 1);
        assert_eq!(
            high[0].size,
            4096u64 * (1 << 20) - crate::memory::PCI_HOLE_START
        );
    }
}
