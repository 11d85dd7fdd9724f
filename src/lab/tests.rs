//! The orchestration against the fake machine (no root needed): `up` then `down` leaves the
//! world as it was; a failure injected at every single step of `up` rolls back exactly what
//! the steps before it made; `down` keeps going past failing removals and reports them all;
//! `down` after an `up` cut short at any step (as by kill -9) removes exactly what was
//! recorded. Bystanders (another lab's namespace and port, a container, the host's routes and
//! sysctls) are in the fake world from the start and must survive everything.

use super::apply::apply;
use super::*;
use crate::os::fake::{FakeRuntime, FakeSystem, World};
use crate::os::{NetOps, System};
use crate::plan::PlanOptions;
use crate::progress::{Mode, Progress};
use crate::runtime::Runtime;
use crate::state::LabState;
use crate::topology::{self, NetworkKind, Topology};

fn quiet() -> Progress {
    Progress::with_mode(Mode::Quiet)
}

struct Case {
    lab: &'static str,
    profile: Option<&'static str>,
    uplink: Option<&'static str>,
    switch: Option<NetworkKind>,
    containers: bool,
    fake_internet: bool,
}

/// The course lab in every shape that changes what `up` does: isolated or with an uplink,
/// Linux or OVS LANs, namespace or container nodes.
const CASES: &[Case] = &[
    Case {
        lab: "t1",
        profile: None,
        uplink: None,
        switch: Some(NetworkKind::Linux),
        containers: false,
        fake_internet: false,
    },
    Case {
        lab: "t2",
        profile: Some("book"),
        uplink: Some("eth9"),
        switch: Some(NetworkKind::Linux),
        containers: false,
        fake_internet: false,
    },
    Case {
        lab: "t3",
        profile: None,
        uplink: Some("eth9"),
        switch: Some(NetworkKind::Ovs),
        containers: true,
        fake_internet: false,
    },
    Case {
        lab: "t4",
        profile: Some("book"),
        uplink: None,
        switch: None,
        containers: true,
        fake_internet: false,
    },
    Case {
        lab: "t6",
        profile: None,
        uplink: None,
        switch: Some(NetworkKind::Linux),
        containers: false,
        fake_internet: true,
    },
];

struct Setup {
    sys: FakeSystem,
    rt: FakeRuntime,
    topo: Topology,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let sys = FakeSystem::new(dir.path().to_path_buf());
    Setup {
        rt: FakeRuntime {
            sys: sys.clone(),
            containers: false,
        },
        sys,
        topo: topology::builtin(),
        _dir: dir,
    }
}

fn request<'a>(topo: &'a Topology, case: &Case) -> UpRequest<'a> {
    UpRequest {
        topology: topo,
        lab: case.lab.into(),
        topology_file: "<builtin>".into(),
        topology_text: String::new(),
        options: PlanOptions {
            uplink: case.uplink.map(String::from),
            switch_override: case.switch,
            profile: case.profile.map(String::from),
            fake_internet: case.fake_internet,
        },
    }
}

fn record(s: &Setup, lab: &str) -> Option<LabState> {
    LabState::load_in(&s.sys.state_dir(), lab).unwrap()
}

#[tokio::test]
async fn up_builds_the_lab_and_teardown_leaves_the_world_as_it_was() {
    for case in CASES {
        let mut s = setup();
        s.rt.containers = case.containers;
        let before = s.sys.world();
        let outcome = up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
            .await
            .unwrap();
        let plan = outcome.plan();
        let after_up = s.sys.world();
        // Every node is there with its interfaces, the switch namespace only for Linux LANs.
        for n in &plan.nodes {
            assert!(after_up.namespaces.contains(&n.netns), "{}", n.netns);
            for i in &n.interfaces {
                assert!(
                    after_up
                        .links
                        .contains_key(&(n.netns.clone(), i.name.clone())),
                    "{}: {}",
                    n.netns,
                    i.name
                );
            }
        }
        assert_eq!(
            plan.switch_ns.is_some(),
            case.switch == Some(NetworkKind::Linux)
        );
        let nat = case.uplink.is_some() || case.fake_internet;
        assert_eq!(after_up.firewall_chains.len(), usize::from(nat));
        if case.fake_internet {
            let f = plan
                .fake_internet
                .as_ref()
                .expect("a fake internet in the plan");
            assert!(
                after_up.namespaces.contains(&f.netns),
                "{:?}",
                after_up.namespaces
            );
            assert!(
                after_up
                    .links
                    .contains_key(&(f.netns.clone(), f.far_link.clone())),
                "the far end in the fake internet"
            );
        }
        if case.uplink.is_some() {
            assert_eq!(after_up.host_sysctls["ipv4.conf.eth9.forwarding"], "1");
        }
        let mut state = record(&s, case.lab).expect("a record");
        assert!(state.complete);
        teardown(&s.sys, &s.rt, &mut state, &quiet()).await.unwrap();
        assert_eq!(s.sys.world(), before, "lab {}", case.lab);
        assert!(record(&s, case.lab).is_none(), "the record is removed");
    }
}

#[tokio::test]
async fn a_failure_at_every_step_of_up_rolls_back_exactly() {
    for case in CASES {
        let mut s = setup();
        s.rt.containers = case.containers;
        up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
            .await
            .unwrap();
        let steps = s.sys.changes();
        assert!(steps > 40, "the course lab takes {steps} changes");
        for k in 1..=steps {
            let mut s = setup();
            s.rt.containers = case.containers;
            let before = s.sys.world();
            s.sys.fail_at(k);
            let err = up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
                .await
                .expect_err("up fails");
            let failed = s.sys.log()[k - 1].clone();
            assert!(
                err.to_string().contains("injected failure"),
                "lab {} step {k} ({failed}): {err}",
                case.lab
            );
            assert!(
                !err.to_string().contains("rollback also failed"),
                "lab {} step {k} ({failed}): {err}",
                case.lab
            );
            assert_eq!(
                s.sys.world(),
                before,
                "lab {} failing at step {k} ({failed}) left something behind",
                case.lab
            );
            assert!(record(&s, case.lab).is_none(), "step {k}: no record left");
        }
    }
}

#[tokio::test]
async fn teardown_keeps_going_past_failures_and_reports_each() {
    let case = &CASES[1];
    let s = setup();
    let before = s.sys.world();
    up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
        .await
        .unwrap();
    s.sys.fail_matching("delete netns tcplab-t1-aix");
    s.sys.fail_matching("delete netns tcplab-t2-aix");
    s.sys.fail_matching("firewall remove");
    let mut state = record(&s, case.lab).unwrap();
    let total = state.objects.len();
    let err = teardown(&s.sys, &s.rt, &mut state, &quiet())
        .await
        .expect_err("two removals fail");
    let msg = err.to_string();
    assert!(msg.contains("namespace tcplab-t2-aix"), "{msg}");
    assert!(msg.contains("firewall chain TCPLAB-t2"), "{msg}");
    assert!(
        matches!(err, crate::Error::Many(ref v) if v.len() == 2),
        "{msg}"
    );
    // Everything else is gone; the record keeps exactly the two that failed.
    let left = record(&s, case.lab).expect("the record stays");
    assert_eq!(left.objects.len(), 2, "{:?}", left.objects);
    assert!(total > 2);
    let w = s.sys.world();
    assert!(w.namespaces.contains("tcplab-t2-aix"));
    assert!(!w.namespaces.contains("tcplab-t2-sun"));
    // Once the machine lets it, a second teardown removes the rest.
    s.sys.heal();
    let mut state = left;
    teardown(&s.sys, &s.rt, &mut state, &quiet()).await.unwrap();
    assert_eq!(s.sys.world(), before);
}

#[tokio::test]
async fn teardown_after_an_up_cut_short_at_any_step_removes_exactly_what_was_recorded() {
    // `apply` without `up`'s rollback is what a killed `up` leaves: its record as written so
    // far and the world as changed so far.
    for case in &CASES[1..3] {
        let mut s = setup();
        s.rt.containers = case.containers;
        up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
            .await
            .unwrap();
        let steps = s.sys.changes();
        for k in (1..=steps).step_by(3) {
            let mut s = setup();
            s.rt.containers = case.containers;
            let before = s.sys.world();
            let req = request(&s.topo, case);
            let mut plan = crate::plan::plan(req.topology, &req.lab, &req.options);
            let mut state = LabState::new_in(&s.sys.state_dir(), case.lab, s.rt.kind());
            state.save().unwrap();
            s.sys.fail_at(k);
            let host = s.sys.host().unwrap();
            let cut = apply(&s.sys, &s.rt, &mut plan, &mut state, host, &quiet()).await;
            assert!(cut.is_err(), "step {k}");
            let mut recorded = record(&s, case.lab).unwrap();
            teardown(&s.sys, &s.rt, &mut recorded, &quiet())
                .await
                .unwrap();
            assert_eq!(s.sys.world(), before, "lab {} cut at step {k}", case.lab);
        }
    }
}

#[tokio::test]
async fn a_second_up_changes_nothing_and_leftovers_without_a_record_are_refused() {
    let case = &CASES[0];
    let s = setup();
    up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
        .await
        .unwrap();
    // A second `up` finds nothing missing and changes nothing.
    let whole = s.sys.world();
    match up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
        .await
        .unwrap()
    {
        UpOutcome::Repaired(_, made) => assert!(made.is_empty(), "{made:?}"),
        other => panic!("a second up made the lab again: {other:?}"),
    }
    assert_eq!(s.sys.world(), whole, "nothing was changed");
    // Another runtime, or another uplink, is refused: the lab is up as it is.
    let other = Case {
        lab: case.lab,
        profile: None,
        uplink: Some("eth9"),
        switch: case.switch,
        containers: false,
        fake_internet: false,
    };
    let err = up(&s.sys, &s.rt, request(&s.topo, &other), &quiet())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`tcplab down` first"), "{err}");
    assert_eq!(err.exit_code(), 2);

    // A namespace with a node's name but no record: refused before anything is made.
    let s = setup();
    s.sys.create_netns("tcplab-t1-sun", &[]).unwrap();
    let changes = s.sys.changes();
    let err = up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("tcplab-t1-sun exists already"),
        "{err}"
    );
    assert_eq!(s.sys.changes(), changes);

    // An uplink that does not exist is named with the host's interfaces.
    let s = setup();
    let bad = Case {
        lab: "t5",
        profile: None,
        uplink: Some("nosuch0"),
        switch: None,
        containers: false,
        fake_internet: false,
    };
    let err = up(&s.sys, &s.rt, request(&s.topo, &bad), &quiet())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("'nosuch0' does not exist"),
        "{err}"
    );
    assert!(err.to_string().contains("eth9"), "{err}");
    assert_eq!(s.sys.changes(), 0);
}

#[tokio::test]
async fn find_unrecorded_sees_the_labs_namespaces_and_tagged_ports_only() {
    let case = &CASES[2];
    let mut s = setup();
    s.rt.containers = true;
    let before: World = s.sys.world();
    up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
        .await
        .unwrap();
    LabState::remove_in(&s.sys.state_dir(), case.lab).unwrap();
    let mut found = find_unrecorded(&s.sys, case.lab, &s.topo).await.unwrap();
    let names: Vec<String> = found.objects.iter().map(|o| format!("{o:?}")).collect();
    assert!(
        names.iter().any(|n| n.contains("tcplab-t3-aix")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.contains("OvsBridges")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("other")), "{names:?}");
    found.runtime = s.rt.kind();
    teardown(&s.sys, &s.rt, &mut found, &quiet()).await.unwrap();
    // The containers are the runtime's to find (by label); the uplink's old forwarding value
    // is known only to the record; everything else is gone.
    let mut w = s.sys.world();
    w.containers.retain(|c| !c.starts_with("tcplab-t3-"));
    w.host_sysctls = before.host_sysctls.clone();
    assert_eq!(w, before);
}

/// What a lab is, without the interface numbers the kernel chose (a repair lets the kernel
/// number the links it makes again).
fn shape(w: &World) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    v.extend(w.namespaces.iter().map(|n| format!("netns {n}")));
    v.extend(
        w.links
            .iter()
            .map(|((ns, name), l)| format!("link {ns}/{name} up={} alias={:?}", l.up, l.alias)),
    );
    let name_of = |ns: &str, i: u32| {
        w.links
            .iter()
            .find(|((n, _), l)| n == ns && l.index == i)
            .map(|((_, name), _)| name.clone())
            .unwrap_or_default()
    };
    v.extend(
        w.addresses
            .iter()
            .map(|(ns, i, a)| format!("address {ns}/{} {a}", name_of(ns, *i))),
    );
    v.extend(w.routes.iter().map(|(ns, to, via, oif)| {
        format!(
            "route {ns} {to} {via:?} {}",
            oif.map(|i| name_of(ns, i)).unwrap_or_default()
        )
    }));
    v.extend(
        w.proxies
            .iter()
            .map(|(ns, i, a)| format!("proxy {ns}/{} {a}", name_of(ns, *i))),
    );
    v.extend(w.etc_dirs.iter().map(|d| format!("etc {d}")));
    v.extend(w.ovs_bridges.keys().map(|b| format!("ovs {b}")));
    v.extend(w.containers.iter().map(|c| format!("container {c}")));
    v.extend(w.workers.keys().map(|c| format!("worker {c}")));
    v.extend(w.firewall_chains.iter().map(|c| format!("chain {c}")));
    v.extend(w.netns_firewalls.keys().map(|n| format!("netns rules {n}")));
    v.extend(
        w.host_sysctls
            .iter()
            .map(|(k, x)| format!("sysctl {k}={x}")),
    );
    v.sort();
    v
}

#[tokio::test]
async fn up_brings_back_a_lab_whose_nodes_namespaces_and_workers_vanished() {
    for case in CASES {
        let mut s = setup();
        s.rt.containers = case.containers;
        up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
            .await
            .unwrap();
        let whole = s.sys.world();
        // A reboot behind tcplab's back: every namespace of the lab, its OVS bridges and its
        // conditions workers are gone; the record stays.
        let doomed: Vec<String> = whole
            .namespaces
            .iter()
            .filter(|n| n.starts_with(&format!("tcplab-{}", case.lab)))
            .cloned()
            .collect();
        for n in &doomed {
            s.sys.delete_netns(n).unwrap();
        }
        s.sys.ovs_delete_lab(case.lab).await.unwrap();
        let host = s.sys.host().unwrap();
        for ((ns, name), l) in whole.links.iter() {
            if ns == crate::os::fake::HOST
                && l.alias.as_deref() == Some(&format!("tcplab:{}", case.lab))
            {
                host.delete_link(name).await.unwrap();
            }
        }
        let rules = crate::net::firewall::UplinkRules::new(case.lab, "", "", &[]);
        s.sys.firewall_remove(&rules.remove_script()).await.unwrap();
        s.sys
            .write_host_sysctl("ipv4.conf.eth9.forwarding", "0")
            .unwrap();
        for c in s.sys.world().workers.keys().cloned().collect::<Vec<_>>() {
            s.sys.stop_link_worker("", "", &c).unwrap();
        }
        assert_ne!(shape(&s.sys.world()), shape(&whole));
        let made = match up(&s.sys, &s.rt, request(&s.topo, case), &quiet()).await {
            Ok(UpOutcome::Repaired(_, made)) => made,
            Ok(UpOutcome::Created(_)) => panic!("lab {}: made anew", case.lab),
            Err(e) => panic!("lab {}: {e}", case.lab),
        };
        assert!(made.iter().any(|m| m.starts_with("node ")), "{made:?}");
        assert_eq!(
            shape(&s.sys.world()),
            shape(&whole),
            "lab {} after repair; made {made:?}",
            case.lab
        );
        // And a second repair finds nothing to do.
        let again = up(&s.sys, &s.rt, request(&s.topo, case), &quiet())
            .await
            .unwrap();
        assert!(
            matches!(again, UpOutcome::Repaired(_, ref m) if m.is_empty()),
            "{again:?}"
        );
    }
}
