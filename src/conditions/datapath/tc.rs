//! Traffic control through rtnetlink, blocking: the qdiscs and filters the datapaths make,
//! list and remove. A [`Tc`] is opened by a thread inside the namespace it acts on (its netlink
//! socket stays bound to that namespace) and is driven by a runtime of its own on that thread,
//! never by a tokio worker.

use crate::error::{Context, Error, Result, netlink_errno};
use futures::StreamExt;
use netlink_packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
    NetlinkMessage, NetlinkPayload,
};
use rtnetlink::LinkUnspec;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
use rtnetlink::packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use std::os::fd::{AsRawFd, BorrowedFd};

/// `TCA_OPTIONS` (from `<linux/rtnetlink.h>`), for qdiscs whose options are a raw struct.
const TCA_OPTIONS: u16 = 2;
/// The clsact qdisc's handle, `ffff:`.
const CLSACT_HANDLE: u32 = 0xffff_0000;
/// The egress hook of a clsact qdisc, `ffff:fff3`.
const EGRESS_PARENT: u32 = 0xffff_fff3;
/// The ingress hook of a clsact qdisc, `ffff:fff2`.
const INGRESS_PARENT: u32 = 0xffff_fff2;

/// A qdisc as listed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Qdisc {
    /// kind (`noqueue`, `clsact`, `netem`, ...)
    pub kind: String,
    /// its handle
    pub handle: u32,
    /// its parent (`TC_H_ROOT`, `TC_H_CLSACT`, a class)
    pub parent: u32,
}

/// A filter as listed: one per priority.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    /// priority (`pref`)
    pub pref: u16,
    /// classifier kind (`u32`, `bpf`, ...)
    pub kind: String,
}

/// A blocking traffic-control client bound to the calling thread's namespace.
pub(crate) struct Tc {
    rt: tokio::runtime::Runtime,
    handle: rtnetlink::Handle,
}

fn kind_of(attrs: &[TcAttribute]) -> String {
    attrs
        .iter()
        .find_map(|a| match a {
            TcAttribute::Kind(k) => Some(k.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

impl Tc {
    /// Open a netlink socket in the CALLING THREAD's network namespace.
    pub(crate) fn open_here() -> Result<Tc> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("starting a runtime for netlink")?;
        let handle = {
            let _guard = rt.enter();
            let (conn, handle, _) =
                rtnetlink::new_connection().context("opening a netlink socket")?;
            rt.spawn(conn);
            handle
        };
        Ok(Tc { rt, handle })
    }

    /// Send one request and collect the answers (an acknowledgement, or a dump's messages).
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, rtnetlink::Error> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | flags;
        let mut handle = self.handle.clone();
        self.rt.block_on(async move {
            let mut answers = handle.request(req)?;
            let mut out = Vec::new();
            while let Some(m) = answers.next().await {
                match m.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(rtnetlink::Error::NetlinkError(e));
                    }
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
            Ok(out)
        })
    }

    /// The index of interface `name` in this namespace, if it exists.
    pub(crate) fn link_index(&self, name: &str) -> Result<Option<u32>> {
        let mut get = self.handle.link().get().match_name(name).execute();
        match self.rt.block_on(get.next()) {
            Some(Ok(m)) => Ok(Some(m.header.index)),
            Some(Err(e)) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
            Some(Err(e)) => Err(e).with_context(|| format!("looking up interface {name}")),
            None => Ok(None),
        }
    }

    /// Whether interface `name` exists and is a TUN/TAP device.
    pub(crate) fn is_tun(&self, name: &str) -> Result<bool> {
        let mut get = self.handle.link().get().match_name(name).execute();
        match self.rt.block_on(get.next()) {
            Some(Ok(m)) => Ok(m.attributes.iter().any(|a| {
                matches!(a, LinkAttribute::LinkInfo(infos)
                    if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Tun))))
            })),
            Some(Err(e)) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(false),
            Some(Err(e)) => Err(e).with_context(|| format!("looking up interface {name}")),
            None => Ok(false),
        }
    }

    /// Add a veth pair `a`/`b` in this namespace (a throwaway device for probing).
    pub(crate) fn add_veth(&self, a: &str, b: &str) -> Result<()> {
        let req = self
            .handle
            .link()
            .add(rtnetlink::LinkVeth::new(a, b).build());
        self.rt
            .block_on(req.execute())
            .with_context(|| format!("adding veth pair {a}/{b}"))
    }

    /// Bring interface `index` up.
    pub(crate) fn set_up(&self, index: u32) -> Result<()> {
        let req = self
            .handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build());
        self.rt
            .block_on(req.execute())
            .with_context(|| format!("bringing interface {index} up"))
    }

    /// Delete interface `index`; false if it was gone already.
    pub(crate) fn delete_link(&self, index: u32) -> Result<bool> {
        match self.rt.block_on(self.handle.link().del(index).execute()) {
            Ok(()) => Ok(true),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("deleting interface {index}")),
        }
    }

    /// The qdiscs of interface `index`.
    pub(crate) fn qdiscs(&self, index: u32) -> Result<Vec<Qdisc>> {
        let msg = RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default());
        let all = self.request(msg, NLM_F_DUMP).context("listing qdiscs")?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewQueueDiscipline(q) if q.header.index == index as i32 => {
                    Some(Qdisc {
                        kind: kind_of(&q.attributes),
                        handle: q.header.handle.into(),
                        parent: q.header.parent.into(),
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Add a clsact qdisc to interface `index`; false if it had one already.
    pub(crate) fn add_clsact(&self, index: u32) -> Result<bool> {
        let msg = RouteNetlinkMessage::NewQueueDiscipline(clsact_message(index));
        match self.request(msg, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL) {
            Ok(_) => Ok(true),
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("adding a clsact qdisc to interface {index}")),
        }
    }

    /// Remove the clsact qdisc of interface `index` (with every filter in it); false if none.
    pub(crate) fn delete_clsact(&self, index: u32) -> Result<bool> {
        let msg = RouteNetlinkMessage::DelQueueDiscipline(clsact_message(index));
        gone_is_fine(self.request(msg, NLM_F_ACK))
            .with_context(|| format!("removing the clsact qdisc of interface {index}"))
    }

    /// Add, at priority `pref` of interface `index`'s egress hook for every protocol, a
    /// cls_bpf filter named `name` running program `prog` in direct-action mode (the
    /// program's return value is the verdict; no action is attached).
    pub(crate) fn add_egress_bpf(
        &self,
        index: u32,
        pref: u16,
        prog: BorrowedFd<'_>,
        name: &str,
    ) -> Result<()> {
        let mut m = TcMessage::with_index(index as i32);
        m.header.parent = EGRESS_PARENT.into();
        m.header.info = u32::from(pref) << 16 | u32::from((libc::ETH_P_ALL as u16).to_be());
        m.attributes.push(TcAttribute::Kind("bpf".into()));
        m.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(prog.as_raw_fd() as u32)),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_string())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.request(RouteNetlinkMessage::NewTrafficFilter(m), flags)
            .map(|_| ())
            .with_context(|| format!("adding an eBPF filter to interface {index}"))
    }

    /// Add, at priority `pref` of interface `index`'s egress hook, a u32 filter matching every
    /// frame with a mirred action redirecting it to the egress of interface `target`.
    pub(crate) fn add_egress_redirect(&self, index: u32, pref: u16, target: u32) -> Result<()> {
        let all_protocols = (libc::ETH_P_ALL as u16).to_be();
        let req = self
            .handle
            .traffic_filter(index as i32)
            .add()
            .egress()
            .priority(pref)
            .protocol(all_protocols)
            .redirect(target)
            .context("building a redirect filter")?;
        self.rt
            .block_on(req.execute())
            .with_context(|| format!("adding a redirect filter to interface {index}"))
    }

    /// The filters on interface `index`'s clsact hook, egress or ingress.
    pub(crate) fn filters(&self, index: u32, egress: bool) -> Result<Vec<Filter>> {
        let mut m = TcMessage::with_index(index as i32);
        m.header.parent = if egress {
            EGRESS_PARENT
        } else {
            INGRESS_PARENT
        }
        .into();
        let answers = match self.request(RouteNetlinkMessage::GetTrafficFilter(m), NLM_F_DUMP) {
            Ok(a) => a,
            // no clsact qdisc: no filters
            Err(e)
                if matches!(
                    netlink_errno(&e),
                    Some(libc::EINVAL | libc::ENOENT | libc::ENODEV)
                ) =>
            {
                vec![]
            }
            Err(e) => return Err(e).with_context(|| format!("listing filters of {index}")),
        };
        let mut out: Vec<Filter> = Vec::new();
        for a in answers {
            if let RouteNetlinkMessage::NewTrafficFilter(f) = a {
                let pref = (f.header.info >> 16) as u16;
                if !out.iter().any(|x| x.pref == pref) {
                    out.push(Filter {
                        pref,
                        kind: kind_of(&f.attributes),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Remove every egress filter at priority `pref` of interface `index`; false if none.
    pub(crate) fn delete_egress_filters(&self, index: u32, pref: u16) -> Result<bool> {
        let mut m = TcMessage::with_index(index as i32);
        m.header.parent = EGRESS_PARENT.into();
        m.header.info = u32::from(pref) << 16 | u32::from((libc::ETH_P_ALL as u16).to_be());
        gone_is_fine(self.request(RouteNetlinkMessage::DelTrafficFilter(m), NLM_F_ACK))
            .with_context(|| format!("removing filter {pref} of interface {index}"))
    }

    /// Make a qdisc of `kind` with handle `handle` and raw options the root qdisc of
    /// interface `index`: changed in place when the root is that qdisc already, else put in
    /// place of what was there.
    pub(crate) fn replace_root(
        &self,
        index: u32,
        handle: u32,
        kind: &str,
        options: Vec<u8>,
    ) -> std::result::Result<(), rtnetlink::Error> {
        let mut m = TcMessage::with_index(index as i32);
        m.header.parent = TcHandle::ROOT;
        m.header.handle = handle.into();
        m.attributes.push(TcAttribute::Kind(kind.to_string()));
        m.attributes
            .push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options)));
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        self.request(RouteNetlinkMessage::NewQueueDiscipline(m), flags)
            .map(|_| ())
    }

    /// Remove interface `index`'s root qdisc if its handle is `handle` (the kernel checks it
    /// and puts its default qdisc back); false if it had none of its own.
    pub(crate) fn delete_root(&self, index: u32, handle: u32) -> Result<bool> {
        let mut m = TcMessage::with_index(index as i32);
        m.header.parent = TcHandle::ROOT;
        m.header.handle = handle.into();
        gone_is_fine(self.request(RouteNetlinkMessage::DelQueueDiscipline(m), NLM_F_ACK))
            .with_context(|| format!("removing the root qdisc of interface {index}"))
    }
}

fn clsact_message(index: u32) -> TcMessage {
    let mut m = TcMessage::with_index(index as i32);
    m.header.handle = CLSACT_HANDLE.into();
    m.header.parent = TcHandle::CLSACT;
    m.attributes.push(TcAttribute::Kind("clsact".into()));
    m
}

/// Ok(true) when done, Ok(false) when there was nothing to remove.
fn gone_is_fine<T>(r: std::result::Result<T, rtnetlink::Error>) -> Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if matches!(netlink_errno(&e), Some(libc::ENOENT | libc::ENODEV)) => Ok(false),
        Err(e) => Err(e).context("netlink"),
    }
}

/// Whether a netlink error means "this kernel has no such qdisc/classifier/action".
pub(crate) fn is_unsupported(e: &rtnetlink::Error) -> bool {
    matches!(
        netlink_errno(e),
        Some(libc::ENOENT | libc::EOPNOTSUPP | libc::EINVAL)
    )
}

/// An error for a netlink failure, with what was being done.
pub(crate) fn netlink_error(e: rtnetlink::Error, what: impl std::fmt::Display) -> Error {
    Err::<(), _>(e).context(what).unwrap_err()
}
