//! Whether the kernel has Open vSwitch's datapath, asked of generic netlink.
//!
//! The kernel's openvswitch module registers the generic netlink family `ovs_datapath`; without
//! it ovs-vswitchd can only run the userspace (`netdev`) datapath. `ovsdb-server` cannot tell:
//! it lists `system` among the datapath types even where the module is missing. So the
//! controller family (`nlctrl`) is asked directly with `CTRL_CMD_GETFAMILY`: it describes a
//! family that exists and answers `ENOENT` for one that does not.
//!
//! Families are global, so the calling thread's network namespace does not matter. Nothing
//! here changes anything.

use std::io;
use std::time::Duration;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::constants::GENL_ID_CTRL;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::TimeVal;

use crate::error::{Context, Error, Result};

/// The generic netlink family of the kernel's Open vSwitch datapath.
pub const OVS_DATAPATH_FAMILY: &str = "ovs_datapath";
/// `GENL_NAMSIZ`: the longest family name, with its final NUL.
const GENL_NAMSIZ: usize = 16;
/// How long the kernel may take to answer (it answers at once).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
/// How many unrelated messages are skipped before giving up.
const MAX_READS: usize = 8;
/// The sequence number of the one request sent on a socket.
const SEQ: u32 = 1;

/// Whether the kernel has Open vSwitch's datapath: does the generic netlink family
/// `ovs_datapath` exist? False on any error (the userspace datapath is then the safe choice).
pub fn kernel_datapath_available() -> bool {
    family_exists(OVS_DATAPATH_FAMILY).unwrap_or(false)
}

/// Whether the generic netlink family `name` exists, asked of the kernel.
///
/// # Errors
///
/// An invalid family name, a socket error, or no answer within a second.
pub fn family_exists(name: &str) -> Result<bool> {
    let request = getfamily_request(name, SEQ)?;
    let context = || format!("asking generic netlink for family {name}");
    let socket = controller_socket().with_context(context)?;
    socket
        .send_to(&request, &SocketAddr::new(0, 0), 0)
        .with_context(context)?;
    // the kernel answers synchronously; skip anything unrelated, boundedly
    for _ in 0..MAX_READS {
        let (datagram, _) = socket.recv_from_full().with_context(context)?;
        if let Some(answer) = getfamily_answer(&datagram, SEQ, name) {
            return Ok(answer);
        }
    }
    Err(Error::Netlink {
        context: context(),
        message: format!("no answer among {MAX_READS} messages"),
    })
}

/// A generic netlink socket bound to a port of its own, whose reads wait at most
/// [`ANSWER_TIMEOUT`].
fn controller_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_GENERIC)?;
    socket.bind_auto()?;
    let timeout = TimeVal::new(ANSWER_TIMEOUT.as_secs().try_into().unwrap_or(1), 0);
    setsockopt(&socket, ReceiveTimeout, &timeout).map_err(io::Error::from)?;
    Ok(socket)
}

/// The `CTRL_CMD_GETFAMILY` request for family `name`, as bytes.
fn getfamily_request(name: &str, seq: u32) -> Result<Vec<u8>> {
    if name.is_empty() || name.contains('\0') || name.len() + 1 > GENL_NAMSIZ {
        return Err(Error::io(
            "asking generic netlink for a family",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{name:?} is not a generic netlink family name (1 to {} bytes, no NUL)",
                    GENL_NAMSIZ - 1
                ),
            ),
        ));
    }
    let genl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_owned())],
    });
    let mut message = NetlinkMessage::from(genl);
    message.header.flags = NLM_F_REQUEST;
    message.header.sequence_number = seq;
    message.finalize();
    let mut bytes = vec![0u8; message.buffer_len()];
    message.serialize(&mut bytes);
    Ok(bytes)
}

/// What `datagram` says about family `name` asked for with `seq`: `Some(true)` for the
/// controller's description of it, `Some(false)` for an error answer, `None` when it says
/// nothing about it or cannot be read.
///
/// The controller answers a request by name only with that family's description, so a
/// controller message for `seq` counts as "exists" even where a newer kernel adds attributes
/// this crate cannot decode; when the name can be decoded it must match.
fn getfamily_answer(datagram: &[u8], seq: u32, name: &str) -> Option<bool> {
    let mut offset = 0;
    while offset < datagram.len() {
        let rest = &datagram[offset..];
        let header = NetlinkBuffer::new_checked(rest).ok()?;
        let length = header.length() as usize;
        if header.sequence_number() == seq {
            let kind = header.message_type();
            let message = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(&rest[..length]);
            match message.map(|m| m.payload) {
                Ok(NetlinkPayload::Error(error)) if error.code.is_some() => return Some(false),
                Ok(NetlinkPayload::InnerMessage(genl)) => {
                    return Some(described_name(&genl.payload).is_none_or(|n| n == name));
                }
                Err(_) if kind == GENL_ID_CTRL => return Some(true),
                _ => {}
            }
        }
        // messages in one datagram are 4-byte aligned
        offset += (length + 3) & !3;
    }
    None
}

/// The family name a controller message describes, if it carries one.
fn described_name(ctrl: &GenlCtrl) -> Option<&str> {
    ctrl.nlas.iter().find_map(|nla| match nla {
        GenlCtrlAttrs::FamilyName(name) => Some(name.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{ErrorMessage, NLMSG_ERROR, NetlinkHeader};
    use std::num::NonZeroI32;

    /// The controller's answer describing family `name` (id 0x20) for `seq`.
    fn description(name: &str, seq: u32) -> Vec<u8> {
        let genl = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::NewFamily,
            nlas: vec![
                GenlCtrlAttrs::FamilyName(name.to_owned()),
                GenlCtrlAttrs::FamilyId(0x20),
            ],
        });
        let mut message = NetlinkMessage::from(genl);
        message.header.sequence_number = seq;
        message.finalize();
        let mut bytes = vec![0u8; message.buffer_len()];
        message.serialize(&mut bytes);
        bytes
    }

    /// The kernel's error answer `-errno` for `seq`.
    fn error_answer(errno: i32, seq: u32) -> Vec<u8> {
        let mut error = ErrorMessage::default();
        error.code = NonZeroI32::new(-errno);
        error.header = vec![0; 16];
        let mut message = NetlinkMessage::<GenlMessage<GenlCtrl>>::new(
            NetlinkHeader::default(),
            NetlinkPayload::Error(error),
        );
        message.header.sequence_number = seq;
        message.finalize();
        let mut bytes = vec![0u8; message.buffer_len()];
        message.serialize(&mut bytes);
        bytes
    }

    #[test]
    fn getfamily_request_carries_the_name() {
        let request = getfamily_request("ovs_datapath", 7).unwrap();
        // nlmsghdr 16 + genlmsghdr 4 + attribute (4 + 13, padded to 20)
        assert_eq!(request.len(), 40);
        let header = NetlinkBuffer::new_checked(&request[..]).unwrap();
        assert_eq!(header.length(), 40);
        assert_eq!(header.message_type(), GENL_ID_CTRL);
        assert_eq!(header.flags(), NLM_F_REQUEST);
        assert_eq!(header.sequence_number(), 7);
        assert_eq!(request[16], 3, "CTRL_CMD_GETFAMILY");
        assert_eq!(u16::from_ne_bytes([request[20], request[21]]), 17);
        assert_eq!(
            u16::from_ne_bytes([request[22], request[23]]),
            2,
            "CTRL_ATTR_FAMILY_NAME"
        );
        assert_eq!(&request[24..37], b"ovs_datapath\0");
        for bad in ["", "way_too_long_family", "n\0l"] {
            let err = getfamily_request(bad, 1).unwrap_err().to_string();
            assert!(err.contains("not a generic netlink family name"), "{err}");
        }
    }

    #[test]
    fn answers_are_read_for_the_right_request_and_name() {
        let found = description("ovs_datapath", 7);
        assert_eq!(getfamily_answer(&found, 7, "ovs_datapath"), Some(true));
        assert_eq!(getfamily_answer(&found, 7, "other"), Some(false));
        assert_eq!(getfamily_answer(&found, 8, "ovs_datapath"), None);
        let missing = error_answer(libc::ENOENT, 7);
        assert_eq!(getfamily_answer(&missing, 7, "ovs_datapath"), Some(false));
        assert_eq!(getfamily_answer(&missing, 6, "ovs_datapath"), None);
        // an unrelated message first, then the answer, in one datagram
        let mut both = error_answer(libc::EPERM, 3);
        both.extend_from_slice(&found);
        assert_eq!(getfamily_answer(&both, 7, "ovs_datapath"), Some(true));
        // a plain acknowledgement (error code 0) says nothing
        let ack = error_answer(0, 7);
        assert_eq!(getfamily_answer(&ack, 7, "ovs_datapath"), None);
        assert_eq!(NLMSG_ERROR, u16::from_ne_bytes([missing[4], missing[5]]));
    }

    #[test]
    fn malformed_answers_never_panic() {
        let found = description("ovs_datapath", 7);
        for cut in 0..found.len() {
            let _ = getfamily_answer(&found[..cut], 7, "ovs_datapath");
        }
        // a length field shorter than a header
        let mut bad = found.clone();
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(getfamily_answer(&bad, 7, "ovs_datapath"), None);
        // an attribute running past the message: still the controller answering our request
        let mut bad = found.clone();
        bad[20..22].copy_from_slice(&200u16.to_ne_bytes());
        assert_eq!(getfamily_answer(&bad, 7, "ovs_datapath"), Some(true));
        assert_eq!(getfamily_answer(&[], 7, "ovs_datapath"), None);
    }

    #[test]
    fn the_kernel_knows_its_controller_and_not_a_made_up_family() {
        match family_exists("nlctrl") {
            Ok(found) => assert!(found, "the controller family always exists"),
            Err(e) => {
                eprintln!("skipped: no generic netlink here: {e}");
                return;
            }
        }
        assert!(!family_exists("tcplab_nosuch").unwrap());
        // this kernel's description of a family decodes in full, not only by its header
        let socket = controller_socket().unwrap();
        let request = getfamily_request("nlctrl", 9).unwrap();
        socket.send_to(&request, &SocketAddr::new(0, 0), 0).unwrap();
        let (datagram, _) = socket.recv_from_full().unwrap();
        let answer = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(&datagram).unwrap();
        let NetlinkPayload::InnerMessage(genl) = answer.payload else {
            panic!("not a family description: {answer:?}");
        };
        assert_eq!(described_name(&genl.payload), Some("nlctrl"));
        eprintln!(
            "kernel Open vSwitch datapath available: {}",
            kernel_datapath_available()
        );
    }
}
