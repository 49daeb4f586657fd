//! QEMU's firmware configuration device (fw_cfg), the way SeaBIOS, OVMF and Linux's
//! `qemu_fw_cfg` driver use it on a PC.
//!
//! The machine fills the device with items before the guest runs: numbered ones
//! ([`FwCfg::set_item`], keys in [`key`]) and named files ([`FwCfg::add_file`]: "etc/e820",
//! "bootorder", "etc/acpi/tables", "genroms/...") listed in the file directory (key 0x19:
//! big-endian count, then per file a big-endian size and key and a 56-byte NUL-padded name,
//! sorted by name, files numbered from key 0x20 in that order). Numbers inside the numbered
//! items are little-endian, as QEMU stores them.
//!
//! The guest selects an item by writing its key to port 0x510 (16-bit) and reads it byte by
//! byte from port 0x511; selecting rewinds to the start, and reads past the end return 0.
//! The DMA interface is at 0x514: the guest writes the big-endian guest physical address of an
//! `FWCfgDmaAccess` (big-endian control, length, address) as two 32-bit halves, high then low;
//! the write of the low half runs the transfer (select, read, skip or write) and writes the
//! control word back, 0 on success or with the error bit. Port 0x514 reads back "QEMU CFG".
//!
//! Item contents are configuration: the machine rebuilds them identically on restore. The
//! saved state holds the selector, the read offset, the DMA address latch, and the contents
//! of the files the guest may write.

mod dma;
#[cfg(test)]
mod tests;

pub use dma::control as dma_control;

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, PluginDescriptor,
    PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of [`FwCfgState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

pub const SELECTOR_PORT: u16 = 0x510;
pub const DATA_PORT: u16 = 0x511;
/// First of the 8 ports of the DMA address register (0x514 high half, 0x518 low half).
pub const DMA_PORT: u16 = 0x514;
/// What the DMA address register reads back as, byte by byte.
pub const DMA_SIGNATURE: &[u8; 8] = b"QEMU CFG";
/// Longest file name, terminating NUL included.
pub const FILE_NAME_LEN: usize = 56;

/// Item keys.
pub mod key {
    pub const SIGNATURE: u16 = 0x0000;
    pub const ID: u16 = 0x0001;
    pub const UUID: u16 = 0x0002;
    pub const RAM_SIZE: u16 = 0x0003;
    pub const NOGRAPHIC: u16 = 0x0004;
    pub const NB_CPUS: u16 = 0x0005;
    pub const MACHINE_ID: u16 = 0x0006;
    pub const KERNEL_ADDR: u16 = 0x0007;
    pub const KERNEL_SIZE: u16 = 0x0008;
    pub const KERNEL_CMDLINE: u16 = 0x0009;
    pub const INITRD_ADDR: u16 = 0x000a;
    pub const INITRD_SIZE: u16 = 0x000b;
    pub const BOOT_DEVICE: u16 = 0x000c;
    pub const NUMA: u16 = 0x000d;
    pub const BOOT_MENU: u16 = 0x000e;
    pub const MAX_CPUS: u16 = 0x000f;
    pub const KERNEL_ENTRY: u16 = 0x0010;
    pub const KERNEL_DATA: u16 = 0x0011;
    pub const INITRD_DATA: u16 = 0x0012;
    pub const CMDLINE_ADDR: u16 = 0x0013;
    pub const CMDLINE_SIZE: u16 = 0x0014;
    pub const CMDLINE_DATA: u16 = 0x0015;
    pub const SETUP_ADDR: u16 = 0x0016;
    pub const SETUP_SIZE: u16 = 0x0017;
    pub const SETUP_DATA: u16 = 0x0018;
    pub const FILE_DIR: u16 = 0x0019;
    /// Files take the keys from here on, in name order.
    pub const FILE_FIRST: u16 = 0x0020;
    /// Selector bit 14: the legacy write mode; ignored when selecting.
    pub const WRITE_CHANNEL: u16 = 0x4000;
    /// Selector bit 15: architecture-specific items.
    pub const ARCH_LOCAL: u16 = 0x8000;
    pub const ACPI_TABLES: u16 = 0x8000;
    pub const SMBIOS_ENTRIES: u16 = 0x8001;
    pub const IRQ0_OVERRIDE: u16 = 0x8002;
    pub const E820_TABLE: u16 = 0x8003;
    pub const HPET: u16 = 0x8004;
}

/// ID item bits: the traditional port interface and the DMA interface are both present.
pub const ID_TRADITIONAL: u32 = 0x1;
pub const ID_DMA: u32 = 0x2;

/// Plugin descriptor (no options; the machine fills the items through the inherent API).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "fw_cfg",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(FwCfg::new()))
}

/// Mistakes in what the machine puts into the device.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FwCfgError {
    #[error("fw_cfg key {0:#06x} is reserved for the file directory and files")]
    ReservedKey(u16),
    #[error("fw_cfg file name {0:?} is empty or longer than 55 bytes")]
    BadName(String),
    #[error("fw_cfg item of {0} bytes is larger than 4 GiB")]
    TooLarge(usize),
    #[error("fw_cfg has no room for another file")]
    TooManyFiles,
}

/// Guest-visible state of the device.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct FwCfgState {
    /// Key last selected (bit 14 included, as written).
    pub selector: u16,
    /// Read position in the selected item.
    pub offset: u32,
    /// The DMA address register as written so far.
    pub dma_address: u64,
    /// Contents of the guest-writable files, by name.
    pub writable_files: BTreeMap<String, Vec<u8>>,
}

/// A named file.
struct File {
    name: String,
    /// Contents (for a writable file, the initial contents; the live ones are in the state).
    data: Vec<u8>,
    writable: bool,
}

/// Everything direct Linux boot puts into fw_cfg: the real-mode setup code, the protected-mode
/// kernel, the initrd and the command line (without its NUL), with their load addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinuxBoot {
    pub setup_addr: u32,
    pub setup: Vec<u8>,
    pub kernel_addr: u32,
    pub kernel: Vec<u8>,
    pub initrd_addr: u32,
    pub initrd: Vec<u8>,
    pub cmdline_addr: u32,
    pub cmdline: Vec<u8>,
}

/// The fw_cfg device.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_fwcfg::{key, FwCfg};
///
/// let mut fw = FwCfg::new();
/// fw.set_u64(key::RAM_SIZE, 128 << 20).unwrap();
/// fw.add_file("bootorder", b"/pci@i0cf8/ide@1,1/drive@0/disk@0\n".to_vec()).unwrap();
/// let mut ctx = FakeContext::new();
/// fw.io_write(0x510, 2, u32::from(key::SIGNATURE), &mut ctx);
/// let sig: Vec<u8> = (0..4).map(|_| fw.io_read(0x511, 1, &mut ctx) as u8).collect();
/// assert_eq!(sig, b"QEMU");
/// fw.io_write(0x510, 2, 0x20, &mut ctx); // the first file
/// assert_eq!(fw.io_read(0x511, 1, &mut ctx), u32::from(b'/'));
/// ```
pub struct FwCfg {
    state: FwCfgState,
    /// Numbered items (not files, not the directory).
    items: BTreeMap<u16, Vec<u8>>,
    /// Sorted by name; file `i` has key `FILE_FIRST + i`.
    files: Vec<File>,
    directory: Vec<u8>,
}

impl Default for FwCfg {
    fn default() -> Self {
        Self::new()
    }
}

impl FwCfg {
    /// A device with the signature, the ID (port and DMA interfaces) and no files.
    #[must_use]
    pub fn new() -> Self {
        let mut fw = Self {
            state: FwCfgState::default(),
            items: BTreeMap::new(),
            files: Vec::new(),
            directory: Vec::new(),
        };
        fw.items.insert(key::SIGNATURE, b"QEMU".to_vec());
        fw.items
            .insert(key::ID, (ID_TRADITIONAL | ID_DMA).to_le_bytes().to_vec());
        fw.rebuild_directory();
        fw
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &FwCfgState {
        &self.state
    }

    /// Set (or replace) a numbered item.
    pub fn set_item(&mut self, key: u16, bytes: Vec<u8>) -> Result<(), FwCfgError> {
        let in_file_range = key & key::ARCH_LOCAL == 0 && key >= key::FILE_FIRST;
        if key == key::FILE_DIR || in_file_range || key & key::WRITE_CHANNEL != 0 {
            return Err(FwCfgError::ReservedKey(key));
        }
        check_len(&bytes)?;
        self.items.insert(key, bytes);
        Ok(())
    }

    pub fn set_u16(&mut self, key: u16, value: u16) -> Result<(), FwCfgError> {
        self.set_item(key, value.to_le_bytes().to_vec())
    }

    pub fn set_u32(&mut self, key: u16, value: u32) -> Result<(), FwCfgError> {
        self.set_item(key, value.to_le_bytes().to_vec())
    }

    pub fn set_u64(&mut self, key: u16, value: u64) -> Result<(), FwCfgError> {
        self.set_item(key, value.to_le_bytes().to_vec())
    }

    /// Add a read-only file, or replace the contents of the file of that name.
    pub fn add_file(&mut self, name: &str, bytes: Vec<u8>) -> Result<(), FwCfgError> {
        self.insert_file(name, bytes, false)
    }

    /// Add a file the guest may overwrite through DMA writes (e.g. "etc/vmgenid_addr").
    pub fn add_writable_file(&mut self, name: &str, bytes: Vec<u8>) -> Result<(), FwCfgError> {
        self.state
            .writable_files
            .insert(name.to_string(), bytes.clone());
        self.insert_file(name, bytes, true)
    }

    fn insert_file(&mut self, name: &str, data: Vec<u8>, writable: bool) -> Result<(), FwCfgError> {
        if name.is_empty() || name.len() >= FILE_NAME_LEN || name.contains('\0') {
            return Err(FwCfgError::BadName(name.to_string()));
        }
        check_len(&data)?;
        let file = File {
            name: name.to_string(),
            data,
            writable,
        };
        match self.files.binary_search_by(|f| f.name.as_str().cmp(name)) {
            Ok(i) => self.files[i] = file,
            Err(i) => {
                if self.files.len() >= usize::from(key::WRITE_CHANNEL - key::FILE_FIRST) {
                    return Err(FwCfgError::TooManyFiles);
                }
                self.files.insert(i, file);
            }
        }
        self.rebuild_directory();
        Ok(())
    }

    /// Put a kernel for direct Linux boot into the items firmware (an option ROM such as
    /// QEMU's linuxboot) reads: addresses and sizes as 32-bit numbers, the command line with
    /// its NUL terminator.
    pub fn set_linux_boot(&mut self, boot: LinuxBoot) -> Result<(), FwCfgError> {
        let mut cmdline = boot.cmdline;
        cmdline.push(0);
        let parts = [
            (
                key::SETUP_ADDR,
                boot.setup_addr,
                key::SETUP_SIZE,
                key::SETUP_DATA,
                boot.setup,
            ),
            (
                key::KERNEL_ADDR,
                boot.kernel_addr,
                key::KERNEL_SIZE,
                key::KERNEL_DATA,
                boot.kernel,
            ),
            (
                key::INITRD_ADDR,
                boot.initrd_addr,
                key::INITRD_SIZE,
                key::INITRD_DATA,
                boot.initrd,
            ),
            (
                key::CMDLINE_ADDR,
                boot.cmdline_addr,
                key::CMDLINE_SIZE,
                key::CMDLINE_DATA,
                cmdline,
            ),
        ];
        for (addr_key, addr, size_key, data_key, data) in parts {
            let len = check_len(&data)?;
            self.set_u32(addr_key, addr)?;
            self.set_u32(size_key, len)?;
            self.set_item(data_key, data)?;
        }
        Ok(())
    }

    /// The key of the file called `name`.
    #[must_use]
    pub fn file_key(&self, name: &str) -> Option<u16> {
        let i = self
            .files
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()?;
        Some(key::FILE_FIRST + i as u16)
    }

    /// The current contents of a file (for a writable file, as the guest left it).
    #[must_use]
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.item(self.file_key(name)?)
    }

    fn rebuild_directory(&mut self) {
        let mut dir = (self.files.len() as u32).to_be_bytes().to_vec();
        for (i, f) in self.files.iter().enumerate() {
            let len = match f.writable {
                true => self.state.writable_files.get(&f.name).map_or(0, Vec::len),
                false => f.data.len(),
            };
            dir.extend_from_slice(&(len as u32).to_be_bytes());
            dir.extend_from_slice(&(key::FILE_FIRST + i as u16).to_be_bytes());
            dir.extend_from_slice(&[0, 0]);
            let mut name = [0u8; FILE_NAME_LEN];
            name[..f.name.len()].copy_from_slice(f.name.as_bytes());
            dir.extend_from_slice(&name);
        }
        self.directory = dir;
    }

    /// The item a selector value names, if it exists.
    fn item(&self, selector: u16) -> Option<&[u8]> {
        let key = selector & !key::WRITE_CHANNEL;
        if key == key::FILE_DIR {
            return Some(&self.directory);
        }
        if key & key::ARCH_LOCAL == 0 && key >= key::FILE_FIRST {
            let file = self.files.get(usize::from(key - key::FILE_FIRST))?;
            if file.writable {
                return self.state.writable_files.get(&file.name).map(Vec::as_slice);
            }
            return Some(&file.data);
        }
        self.items.get(&key).map(Vec::as_slice)
    }

    fn select(&mut self, selector: u16) {
        self.state.selector = selector;
        self.state.offset = 0;
    }

    /// Next byte of the selected item through the data port; 0 past its end.
    fn read_data(&mut self) -> u8 {
        let offset = self.state.offset;
        let byte = self
            .item(self.state.selector)
            .and_then(|data| data.get(offset as usize).copied());
        if byte.is_some() {
            self.state.offset = offset.wrapping_add(1);
        }
        byte.unwrap_or(0)
    }

    /// Store bytes of a write to the DMA address register; the write that completes the low
    /// half starts the transfer.
    fn write_dma_address(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        if port == DMA_PORT {
            // A new high half: as on QEMU, the low half starts over too.
            self.state.dma_address = 0;
        }
        let mut bytes = self.state.dma_address.to_be_bytes();
        let mut completes = false;
        for i in 0..size.clamp(1, 4) {
            let index = usize::from(port.wrapping_sub(DMA_PORT)) + usize::from(i);
            if let Some(b) = bytes.get_mut(index) {
                *b = (value >> (8 * u32::from(i))) as u8;
                completes |= index == 7;
            }
        }
        self.state.dma_address = u64::from_be_bytes(bytes);
        if completes {
            let address = std::mem::take(&mut self.state.dma_address);
            self.dma_transfer(address, ctx);
        }
    }
}

/// The length of an item as the 32-bit number fw_cfg reports.
fn check_len(bytes: &[u8]) -> Result<u32, FwCfgError> {
    u32::try_from(bytes.len()).map_err(|_| FwCfgError::TooLarge(bytes.len()))
}

impl Snapshot for FwCfg {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    /// The saved writable files replace the current contents of files of the same name.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: FwCfgState = restore_state(STATE_VERSION, bytes)?;
        self.state = state;
        self.rebuild_directory();
        Ok(())
    }
}

impl Device for FwCfg {
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        "fw_cfg"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![
            PortRange::new(SELECTOR_PORT, 2),
            PortRange::new(DMA_PORT, DMA_SIGNATURE.len() as u16),
        ]
    }

    fn io_read(&mut self, port: u16, size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        match (port, size) {
            (DATA_PORT, 1) => u32::from(self.read_data()),
            // A 16-bit read of the selector port reads two data bytes, the first in bits 15:8.
            (SELECTOR_PORT, 2) => (u32::from(self.read_data()) << 8) | u32::from(self.read_data()),
            _ => (0..size.clamp(1, 4)).fold(0, |value, i| {
                let index = usize::from(port.wrapping_sub(DMA_PORT)) + usize::from(i);
                let byte = DMA_SIGNATURE.get(index).copied().unwrap_or(0xff);
                value | (u32::from(byte) << (8 * u32::from(i)))
            }),
        }
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        match port {
            SELECTOR_PORT if size == 2 => self.select(value as u16),
            // Writes through the data port have been ignored since QEMU 2.4.
            SELECTOR_PORT | DATA_PORT => {}
            _ => self.write_dma_address(port, size, value, ctx),
        }
    }

    /// Selects the signature again; item contents, written files included, stay.
    fn reset(&mut self) {
        self.select(key::SIGNATURE);
        self.state.dma_address = 0;
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}
}
