//! The walk over one cgroup path, and the small interface every runtime family
//! implements.
//!
//! A path is split into components. The walker visits them outermost first and asks
//! the registered families, in registry order, whether a *scheme* starts at the
//! current component (a family-specific layout that may span several components, e.g.
//! `ecs/<task>/<id>`), then whether the component alone is a self-named *leaf* (e.g.
//! `docker-<id>.scope`). Each hit appends chain elements; the walk goes on after it,
//! so nested runtimes become a chain, outermost first.
//!
//! *Anchored* positions are the root of an absolute path and the position right after
//! a recognised element. Context words whose scheme is loose (`/lxc/<name>`) are only
//! believed there, and a context word found there whose layout does not fit (e.g.
//! `/docker/not-an-id`) stops the walk: that subtree belongs to the runtime, and a
//! generic id below it is not a container of another kind.

use super::{ChainElement, Kind, Pod, Runtime};
use std::borrow::Cow;
use std::cell::OnceCell;

/// The components of one path, after dropping empty components, `.` and the leading
/// `..` of a cgroup-namespace-relative path.
pub(crate) struct Cx<'p, 'a> {
    /// The components, outermost first.
    pub(crate) comps: &'p [&'a str],
    /// The path started with `..`: position 0 is not the root of the hierarchy.
    pub(crate) relative: bool,
    /// Per-path answers a family computes once, so that no scheme rescans the whole
    /// path at every component (which would be quadratic on hostile input).
    memo: [OnceCell<Option<usize>>; 2],
}

/// Slots of [`Cx::memo`].
pub(crate) mod memo {
    /// Index of the first component containing `kubepods`.
    pub(crate) const FIRST_KUBEPODS: usize = 0;
    /// Index of the last component that is a pod segment or a `slice:engine:id`.
    pub(crate) const LAST_POD: usize = 1;
}

impl<'p, 'a> Cx<'p, 'a> {
    /// A path's components.
    pub(crate) fn new(comps: &'p [&'a str], relative: bool) -> Self {
        Cx {
            comps,
            relative,
            memo: [OnceCell::new(), OnceCell::new()],
        }
    }

    /// The value of `slot` for this path, computed by `f` the first time.
    pub(crate) fn memo(&self, slot: usize, f: impl FnOnce() -> Option<usize>) -> Option<usize> {
        self.memo.get(slot).and_then(|cell| *cell.get_or_init(f))
    }

    /// Component `i`, if any.
    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        self.comps.get(i).copied()
    }

    /// `i` is the true root of the hierarchy.
    pub(crate) fn at_root(&self, i: usize) -> bool {
        i == 0 && !self.relative
    }
}

/// What may follow the last element of a chain inside the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Anything: the element runs a whole system or manages its own sub-cgroups.
    Any,
    /// Nothing, or a sub-cgroup that a runtime or an init inside the container makes:
    /// a systemd unit name, `init`, `container`, `payload`. Anything else means the id
    /// was a directory name of something else (`/docker/<id>/not_hex` names nothing).
    Systemish,
}

impl Tail {
    fn accepts(self, rest: &[&str]) -> bool {
        match (self, rest.first()) {
            (Tail::Any, _) | (Tail::Systemish, None) => true,
            (Tail::Systemish, Some(first)) => {
                matches!(*first, "init" | "container" | "payload")
                    || super::systemd::unit_name_is_valid(
                        super::systemd::cg_unescape(first),
                        super::systemd::PLAIN_OR_INSTANCE,
                    )
            }
        }
    }
}

/// A scheme that matched.
#[derive(Debug)]
pub(crate) struct Found<'a> {
    /// Components consumed, at least 1.
    pub(crate) consumed: usize,
    /// Elements, outermost first (a pod or an ECS task, then a container).
    pub(crate) elements: [Option<ChainElement<'a>>; 2],
    /// The Kubernetes pod named on the way.
    pub(crate) pod: Option<Pod<'a>>,
    /// What may follow.
    pub(crate) tail: Tail,
}

impl<'a> Found<'a> {
    /// One element from one or more components.
    pub(crate) fn one(consumed: usize, element: ChainElement<'a>, tail: Tail) -> Self {
        Found {
            consumed,
            elements: [Some(element), None],
            pod: None,
            tail,
        }
    }
}

/// The answer of a family's scheme at a position.
#[derive(Debug)]
pub(crate) enum Scheme<'a> {
    /// A layout of this family starts here.
    Found(Found<'a>),
    /// This family owns the subtree but its layout does not fit, or the subtree is a
    /// monitor: nothing below names a workload.
    Stop,
    /// Not this family.
    No,
}

/// A single component that names a workload by itself.
#[derive(Debug)]
pub(crate) enum Leaf<'a> {
    /// A workload element.
    Element {
        /// The element.
        element: ChainElement<'a>,
        /// The component had a suffix after the id (`.scope`).
        suffixed: bool,
        /// Without a suffix, directly under a Kubernetes pod slice, this is the pod
        /// sandbox (CRI-O's `crio-<id>` next to `crio-<id>.scope` containers).
        sandbox_when_bare: bool,
        /// What may follow.
        tail: Tail,
    },
    /// A runtime's monitor process (conmon, lxc monitor): not the workload.
    Monitor,
}

impl<'a> Leaf<'a> {
    /// A container leaf.
    pub(crate) fn container(runtime: Runtime, id: Cow<'a, str>, suffixed: bool) -> Self {
        Leaf::Element {
            element: ChainElement {
                kind: Kind::Container,
                runtime,
                id,
            },
            suffixed,
            sandbox_when_bare: false,
            tail: Tail::Systemish,
        }
    }
}

/// One runtime family: a file under `workload/`, registered in [`super::FAMILIES`].
pub(crate) trait Family: Sync {
    /// A layout of this family starting at `cx.comps[i]`.
    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, anchored: bool) -> Scheme<'a> {
        let _ = (cx, i, anchored);
        Scheme::No
    }

    /// Directory names this family owns wherever they appear (`docker`, `ecs`, …), so
    /// that loose readings of other families (containerd's `/<namespace>/<name>`) leave
    /// them alone.
    fn context_words(&self) -> &'static [&'static str] {
        &[]
    }

    /// `comp` alone names a workload of this family.
    fn leaf<'a>(&self, comp: &'a str) -> Option<Leaf<'a>> {
        let _ = comp;
        None
    }
}

/// Some family owns `word` as a context directory name.
pub(crate) fn is_context_word(word: &str) -> bool {
    super::FAMILIES
        .iter()
        .any(|f| f.context_words().contains(&word))
}

/// Asks every family whether `comp` is a self-named leaf.
pub(crate) fn leaf(comp: &str) -> Option<Leaf<'_>> {
    super::FAMILIES.iter().find_map(|f| f.leaf(comp))
}

/// What one path names.
#[derive(Debug, Default)]
pub(crate) struct PathResult<'a> {
    pub(crate) chain: Vec<ChainElement<'a>>,
    pub(crate) pod: Option<Pod<'a>>,
}

/// Chain elements gathered during a walk: the first few stay on the stack, so that a
/// walk whose elements are thrown away at the end (a bad tail) allocates nothing.
struct Elements<'a> {
    inline: [Option<ChainElement<'a>>; 4],
    len: usize,
    spill: Vec<ChainElement<'a>>,
}

impl<'a> Elements<'a> {
    fn new() -> Self {
        Elements {
            inline: [None, None, None, None],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, e: ChainElement<'a>) {
        if self.spill.is_empty() && self.len < self.inline.len() {
            self.inline[self.len] = Some(e);
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill
                    .extend(self.inline.iter_mut().filter_map(Option::take));
            }
            self.spill.push(e);
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0 && self.spill.is_empty()
    }

    fn into_vec(self) -> Vec<ChainElement<'a>> {
        if self.spill.is_empty() {
            self.inline.into_iter().flatten().collect()
        } else {
            self.spill
        }
    }
}

/// Walks the components of one path.
pub(crate) fn walk<'a>(cx: &Cx<'_, 'a>) -> PathResult<'a> {
    let mut chain = Elements::new();
    let mut pod = None;
    let mut i = 0;
    let mut anchored = !cx.relative;
    let mut tail = Tail::Any;
    let mut end_of_last = 0;
    let mut stopped = false;
    'walk: while i < cx.comps.len() {
        for family in super::FAMILIES {
            match family.scheme(cx, i, anchored) {
                Scheme::No => {}
                Scheme::Stop => {
                    stopped = true;
                    break 'walk;
                }
                Scheme::Found(found) => {
                    for e in found.elements.into_iter().flatten() {
                        chain.push(e);
                    }
                    if found.pod.is_some() {
                        pod = found.pod;
                    }
                    i += found.consumed.max(1);
                    end_of_last = i;
                    tail = found.tail;
                    anchored = true;
                    continue 'walk;
                }
            }
        }
        match leaf(cx.comps[i]) {
            Some(Leaf::Monitor) => {
                stopped = true;
                break 'walk;
            }
            Some(Leaf::Element {
                element, tail: t, ..
            }) => {
                chain.push(element);
                i += 1;
                end_of_last = i;
                tail = t;
                anchored = true;
            }
            None => {
                i += 1;
                anchored = false;
            }
        }
    }
    if !stopped && !chain.is_empty() && !tail.accepts(&cx.comps[end_of_last..]) {
        return PathResult::default();
    }
    PathResult {
        chain: chain.into_vec(),
        pod,
    }
}
