//! The userspace datapath's egress classifier as an eBPF program, assembled here (eight
//! instructions, no compiler) and loaded with the `bpf(2)` system call, for a cls_bpf filter in
//! direct-action mode:
//!
//! ```text
//! r2 = skb->mark                    ; struct __sk_buff, offset 8
//! if r2 != PASS_MARK goto redirect
//! r0 = TC_ACT_OK                    ; the worker's own frame: on to the qdisc and the taps
//! exit
//! redirect:
//! r0 = bpf_redirect(tap_ifindex, 0) ; the node's frame: to the TAP (TC_ACT_REDIRECT)
//! exit
//! ```
//!
//! Frames the worker writes back carry [`PASS_MARK`] (its socket's `SO_MARK`), so they take the
//! interface's normal transmit path once: root qdisc, packet taps (captures see them), driver.

use crate::error::{Error, Result};
use std::os::fd::{FromRawFd, OwnedFd};

/// The `skb->mark` of the frames the worker sends again: the classifier lets them pass. Below
/// 2^31, as the program compares it as a sign-extended 32-bit immediate.
pub const PASS_MARK: u32 = 0x07c1_07c1;
const _: () = assert!(PASS_MARK < 0x8000_0000);

/// The name the filter carries (`TCA_BPF_NAME`), seen in `tc filter show`.
pub(crate) const FILTER_NAME: &str = "tcplab-shaper";
/// The program's name in the kernel (at most 15 bytes; letters, digits, `_` and `.`).
const PROG_NAME: &[u8] = b"tcplab_shaper";

/// `BPF_PROG_LOAD` (`enum bpf_cmd` in `<linux/bpf.h>`).
const BPF_PROG_LOAD: libc::c_long = 5;
/// `BPF_PROG_TYPE_SCHED_CLS`: a tc classifier.
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
/// `bpf_redirect`'s helper id (`enum bpf_func_id`).
const HELPER_REDIRECT: i32 = 23;
/// `TC_ACT_OK` (`<linux/pkt_cls.h>`): go on as if no filter were there.
const TC_ACT_OK: i32 = 0;
/// Offset of `mark` in `struct __sk_buff` (after `len` and `pkt_type`).
const SKB_MARK_OFFSET: i16 = 8;
/// Bytes of the verifier's log kept for an error.
const LOG_SIZE: usize = 64 * 1024;

// Instruction classes, sizes, modes, operations and sources (`<linux/bpf_common.h>`, `bpf.h`).
const BPF_LDX: u8 = 0x01;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_MOV: u8 = 0xb0;
const BPF_JNE: u8 = 0x50;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;

/// One eBPF instruction, `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    /// `dst_reg:4, src_reg:4`, a bitfield laid out by the machine's byte order
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    let regs = if cfg!(target_endian = "little") {
        (src << 4) | (dst & 0x0f)
    } else {
        (dst << 4) | (src & 0x0f)
    };
    Insn {
        code,
        regs,
        off,
        imm,
    }
}

/// `dst = imm` (64 bits).
fn mov(dst: u8, imm: i32) -> Insn {
    insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}

fn exit() -> Insn {
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// The classifier's instructions for a TAP of index `tap_ifindex`.
fn program(tap_ifindex: u32) -> Vec<Insn> {
    vec![
        insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, SKB_MARK_OFFSET, 0),
        insn(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 2, PASS_MARK as i32),
        mov(0, TC_ACT_OK),
        exit(),
        mov(1, tap_ifindex as i32),
        mov(2, 0),
        insn(BPF_JMP | BPF_CALL, 0, 0, 0, HELPER_REDIRECT),
        exit(),
    ]
}

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type`; the kernel
/// takes a shorter attribute as if the rest were zero.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Load the classifier redirecting to the TAP of index `tap_ifindex`: the program's
/// descriptor (the filter keeps its own reference once attached). The error carries the
/// verifier's log.
pub(crate) fn load_redirect(tap_ifindex: u32) -> Result<OwnedFd> {
    let insns = program(tap_ifindex);
    let license = c"GPL";
    let mut log = vec![0u8; LOG_SIZE];
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SCHED_CLS,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: LOG_SIZE as u32,
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: 0,
    };
    // SAFETY: `attr` is a valid bpf_attr prefix of the size given; the instructions, the
    // license and the log buffer it points to outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        let errno = std::io::Error::last_os_error();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let verifier = if text.is_empty() {
            String::new()
        } else {
            format!(" (verifier: {text})")
        };
        return Err(Error::Environment(format!(
            "loading the eBPF redirect classifier failed: {errno}{verifier}; the kernel needs \
             CONFIG_BPF_SYSCALL and cls_bpf"
        )));
    }
    // SAFETY: the kernel just returned this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(p: &[Insn]) -> Vec<u8> {
        p.iter()
            .flat_map(|i| {
                let mut b = vec![i.code, i.regs];
                b.extend_from_slice(&i.off.to_le_bytes());
                b.extend_from_slice(&i.imm.to_le_bytes());
                b
            })
            .collect()
    }

    /// The instructions as clang -target bpf -O2 encodes the same C (little-endian).
    #[test]
    #[cfg(target_endian = "little")]
    fn program_encodes_as_the_compiler_would() {
        let want: Vec<u8> = [
            [0x61, 0x12, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00], // r2 = *(u32 *)(r1 + 8)
            [0x55, 0x02, 0x02, 0x00, 0xc1, 0x07, 0xc1, 0x07], // if r2 != 0x7c107c1 goto +2
            [0xb7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // r0 = 0
            [0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // exit
            [0xb7, 0x01, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00], // r1 = 42
            [0xb7, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // r2 = 0
            [0x85, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00], // call 23
            [0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // exit
        ]
        .concat();
        assert_eq!(bytes(&program(42)), want);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn the_attribute_has_the_kernels_layout() {
        // offsetof(union bpf_attr, expected_attach_type) + 4
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
    }

    #[test]
    fn the_verifier_takes_the_program() {
        if !crate::sys::is_root() {
            eprintln!("skipped: loading an eBPF program needs root");
            return;
        }
        match load_redirect(1) {
            Ok(_) => {}
            Err(e) => {
                // a kernel without BPF says so; anything else is a wrong program
                let text = e.to_string();
                assert!(!text.contains("verifier"), "{text}");
                eprintln!("skipped: this kernel loads no eBPF program: {text}");
            }
        }
    }
}
