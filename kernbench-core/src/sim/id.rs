//! Typed indices of a run: a program instance, an op of its lowered program,
//! an IPCQ channel.

/// A program instance (index into the launch's PEs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstId(pub u32);

/// An op of one instance's lowered program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u32);

/// An IPCQ channel of a launch (index into [`crate::passes::pair::Channels::list`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChanId(pub u32);

/// An op of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpRef {
    /// The instance.
    pub inst: InstId,
    /// The op.
    pub op: OpId,
}

impl InstId {
    /// As an index.
    pub fn ix(self) -> usize {
        self.0 as usize
    }
}

impl OpId {
    /// As an index.
    pub fn ix(self) -> usize {
        self.0 as usize
    }
}

impl ChanId {
    /// As an index.
    pub fn ix(self) -> usize {
        self.0 as usize
    }
}

impl OpRef {
    /// Op `op` of instance `inst`.
    pub fn new(inst: InstId, op: OpId) -> Self {
        OpRef { inst, op }
    }
}
