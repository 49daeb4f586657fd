#!/usr/bin/env bash
# Fetches real guests from Debian's packages with `apt-get download` and builds from them, into a
# cache folder outside git (default ~/.cache/nestor-guests, or $NESTOR_GUESTS):
#   vmlinuz          Debian's stock kernel (the package linux-image-amd64 points at)
#   initrd.gz        a busybox initramfs whose /init prints a marker, runs a command, powers off
#   nestor.iso       a bootable ISO (isolinux, El Torito no-emulation) with that kernel + initrd
#   disk.img         a bootable hard-disk image (MBR, FAT16 partition, syslinux)
#   seabios.bin, vgabios-stdvga.bin   SeaBIOS and its VGA BIOS
#   memtest86+.bin   memtest86+ (the 32/64-bit Linux-boot-protocol image)
# Idempotent: what is already in the cache is kept. Run as root (apt-get) or with sudo.
set -euo pipefail
cache="${NESTOR_GUESTS:-$HOME/.cache/nestor-guests}"
mkdir -p "$cache/debs"
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

tools=(cpio xorriso mtools dosfstools syslinux fdisk gzip)
need=()
for t in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$t" 2>/dev/null | grep -q "install ok installed" || need+=("$t")
done
if [ ${#need[@]} -gt 0 ] || [ ! -f "$cache/.apt-updated" ]; then
  $sudo apt-get update -qq
  touch "$cache/.apt-updated"
fi
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"

kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kernel_pkg" ] || { echo "fetch-guests: cannot resolve linux-image-amd64" >&2; exit 1; }
packages=("$kernel_pkg" busybox-static seabios memtest86+ isolinux syslinux-common)
cd "$cache/debs"
for p in "${packages[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -q "$p"
done
extract() { rm -rf "$2"; mkdir -p "$2"; dpkg-deb -x "$(ls "$cache/debs/${1}"_*.deb | head -n 1)" "$2"; }
work="$cache/work"
mkdir -p "$work"

if [ ! -f "$cache/vmlinuz" ]; then
  extract "$kernel_pkg" "$work/kernel"
  cp "$(ls "$work"/kernel/boot/vmlinuz-* | head -n 1)" "$cache/vmlinuz"
fi
if [ ! -f "$cache/seabios.bin" ]; then
  extract seabios "$work/seabios"
  cp "$work/seabios/usr/share/seabios/bios.bin" "$cache/seabios.bin"
  cp "$work/seabios/usr/share/seabios/vgabios-stdvga.bin" "$cache/vgabios-stdvga.bin"
fi
if [ ! -f "$cache/memtest86+.bin" ]; then
  extract memtest86+ "$work/memtest"
  cp "$(ls "$work"/memtest/boot/memtest86+x64.bin "$work"/memtest/boot/memtest86+*.bin 2>/dev/null | head -n 1)" "$cache/memtest86+.bin"
fi

if [ ! -f "$cache/initrd.gz" ]; then
  extract busybox-static "$work/busybox"
  root="$work/initramfs"
  rm -rf "$root"; mkdir -p "$root"/{bin,sbin,proc,sys,dev,etc,tmp,root}
  cp "$work/busybox/bin/busybox" "$root/bin/busybox"
  cat > "$root/init" <<'INIT'
#!/bin/busybox sh
# Nestor's test guest: a marker, one command, then ACPI power-off. Kernel command line:
#   nestor.shell   stay in an interactive shell on the console instead
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "nestor-guest: shell ready"
if grep -q nestor.shell /proc/cmdline; then
  exec setsid cttyhack sh
fi
echo "nestor-guest: $(uname -sr) on $(grep -c ^processor /proc/cpuinfo) cpu(s)"
echo "nestor-guest: done, powering off"
poweroff -f
INIT
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$cache/initrd.gz"
fi

# The last console= is /dev/console, where init writes: the serial port.
append="console=tty0 console=ttyS0,115200 panic=-1 quiet"
if [ ! -f "$cache/nestor.iso" ]; then
  extract isolinux "$work/isolinux"
  extract syslinux-common "$work/syslinux"
  iso="$work/iso"
  rm -rf "$iso"; mkdir -p "$iso/isolinux" "$iso/boot"
  cp "$work/isolinux/usr/lib/ISOLINUX/isolinux.bin" "$iso/isolinux/"
  cp "$work/syslinux/usr/lib/syslinux/modules/bios/ldlinux.c32" "$iso/isolinux/"
  cp "$cache/vmlinuz" "$iso/boot/vmlinuz"
  cp "$cache/initrd.gz" "$iso/boot/initrd.gz"
  printf 'default linux\nprompt 0\ntimeout 0\nlabel linux\n  kernel /boot/vmlinuz\n  append initrd=/boot/initrd.gz %s\n' "$append" > "$iso/isolinux/isolinux.cfg"
  xorriso -as mkisofs -quiet -o "$cache/nestor.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table -V NESTOR "$iso"
fi

if [ ! -f "$cache/disk.img" ]; then
  extract syslinux-common "$work/syslinux"
  part_mib=64
  fat="$work/fat.img"
  rm -f "$fat"
  mkfs.fat -C -n NESTOR "$fat" $((part_mib * 1024)) >/dev/null
  printf 'default linux\nprompt 0\ntimeout 0\nlabel linux\n  kernel /vmlinuz\n  append initrd=/initrd.gz %s\n' "$append" > "$work/syslinux.cfg"
  MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$cache/vmlinuz" "$cache/initrd.gz" "$work/syslinux.cfg" ::/
  syslinux --install "$fat"
  disk="$work/disk.img"
  rm -f "$disk"
  truncate -s 1M "$disk"
  cat "$fat" >> "$disk"
  echo "start=2048, type=6, bootable" | sfdisk -q "$disk"
  dd if="$work/syslinux/usr/lib/syslinux/mbr/mbr.bin" of="$disk" bs=440 count=1 conv=notrunc status=none
  mv "$disk" "$cache/disk.img"
fi
echo "fetch-guests: ready in $cache"
ls -l "$cache" | grep -v "^d\|^total"
