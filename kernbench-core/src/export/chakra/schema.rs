//! The Chakra execution-trace messages (`proto/et_def.proto` at the
//! repository root), as prost structs written by hand: the field numbers,
//! wire types and enum values are the schema's, so files decode with
//! Chakra's own generated code, and no protoc runs at build time.
//!
//! `tests/chakra.rs` parses the `.proto` text and checks every message,
//! field and enum value here against it.

use prost::{Enumeration, Message, Oneof};

/// A named value on a node or on the trace; exactly one of its values is set.
#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    /// The attribute's name (`comm_src`, `num_ops`, ...).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Free text about it.
    #[prost(string, tag = "2")]
    pub doc_string: String,
    /// Its value.
    #[prost(
        oneof = "attribute_proto::Value",
        tags = "3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32"
    )]
    pub value: Option<attribute_proto::Value>,
}

/// The value of an [`AttributeProto`].
pub mod attribute_proto {
    use super::*;

    /// One value of the schema's `value` oneof, by type.
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Value {
        /// `double`.
        #[prost(double, tag = "3")]
        DoubleVal(f64),
        /// A list of `double`.
        #[prost(message, tag = "4")]
        DoubleList(DoubleList),
        /// `float`.
        #[prost(float, tag = "5")]
        FloatVal(f32),
        /// A list of `float`.
        #[prost(message, tag = "6")]
        FloatList(FloatList),
        /// `int32`.
        #[prost(int32, tag = "7")]
        Int32Val(i32),
        /// A list of `int32`.
        #[prost(message, tag = "8")]
        Int32List(Int32List),
        /// `int64`.
        #[prost(int64, tag = "9")]
        Int64Val(i64),
        /// A list of `int64`.
        #[prost(message, tag = "10")]
        Int64List(Int64List),
        /// `uint32`.
        #[prost(uint32, tag = "11")]
        Uint32Val(u32),
        /// A list of `uint32`.
        #[prost(message, tag = "12")]
        Uint32List(Uint32List),
        /// `uint64`.
        #[prost(uint64, tag = "13")]
        Uint64Val(u64),
        /// A list of `uint64`.
        #[prost(message, tag = "14")]
        Uint64List(Uint64List),
        /// `sint32` (zigzag).
        #[prost(sint32, tag = "15")]
        Sint32Val(i32),
        /// A list of `sint32`.
        #[prost(message, tag = "16")]
        Sint32List(Sint32List),
        /// `sint64` (zigzag).
        #[prost(sint64, tag = "17")]
        Sint64Val(i64),
        /// A list of `sint64`.
        #[prost(message, tag = "18")]
        Sint64List(Sint64List),
        /// `fixed32`.
        #[prost(fixed32, tag = "19")]
        Fixed32Val(u32),
        /// A list of `fixed32`.
        #[prost(message, tag = "20")]
        Fixed32List(Fixed32List),
        /// `fixed64`.
        #[prost(fixed64, tag = "21")]
        Fixed64Val(u64),
        /// A list of `fixed64`.
        #[prost(message, tag = "22")]
        Fixed64List(Fixed64List),
        /// `sfixed32`.
        #[prost(sfixed32, tag = "23")]
        Sfixed32Val(i32),
        /// A list of `sfixed32`.
        #[prost(message, tag = "24")]
        Sfixed32List(Sfixed32List),
        /// `sfixed64`.
        #[prost(sfixed64, tag = "25")]
        Sfixed64Val(i64),
        /// A list of `sfixed64`.
        #[prost(message, tag = "26")]
        Sfixed64List(Sfixed64List),
        /// `bool`.
        #[prost(bool, tag = "27")]
        BoolVal(bool),
        /// A list of `bool`.
        #[prost(message, tag = "28")]
        BoolList(BoolList),
        /// `string`.
        #[prost(string, tag = "29")]
        StringVal(String),
        /// A list of `string`.
        #[prost(message, tag = "30")]
        StringList(StringList),
        /// `bytes`.
        #[prost(bytes = "vec", tag = "31")]
        BytesVal(Vec<u8>),
        /// A list of `bytes`.
        #[prost(message, tag = "32")]
        BytesList(BytesList),
    }
}

macro_rules! list {
    ($name:ident, $kind:ident, $ty:ty, $what:literal) => {
        #[doc = concat!("A list of `", $what, "` values.")]
        #[derive(Clone, PartialEq, Message)]
        pub struct $name {
            /// The values.
            #[prost($kind, repeated, tag = "1")]
            pub values: Vec<$ty>,
        }
    };
}

list!(DoubleList, double, f64, "double");
list!(FloatList, float, f32, "float");
list!(Int32List, int32, i32, "int32");
list!(Int64List, int64, i64, "int64");
list!(Uint32List, uint32, u32, "uint32");
list!(Uint64List, uint64, u64, "uint64");
list!(Sint32List, sint32, i32, "sint32");
list!(Sint64List, sint64, i64, "sint64");
list!(Fixed32List, fixed32, u32, "fixed32");
list!(Fixed64List, fixed64, u64, "fixed64");
list!(Sfixed32List, sfixed32, i32, "sfixed32");
list!(Sfixed64List, sfixed64, i64, "sfixed64");
list!(BoolList, bool, bool, "bool");
list!(StringList, string, String, "string");

/// A list of `bytes` values.
#[derive(Clone, PartialEq, Message)]
pub struct BytesList {
    /// The values.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub values: Vec<Vec<u8>>,
}

/// The first message of a trace file.
#[derive(Clone, PartialEq, Message)]
pub struct GlobalMetadata {
    /// The schema version the trace follows.
    #[prost(string, tag = "1")]
    pub version: String,
    /// Attributes of the whole trace.
    #[prost(message, repeated, tag = "2")]
    pub attr: Vec<AttributeProto>,
}

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum NodeType {
    /// Not a valid node (ASTRA-sim skips it).
    InvalidNode = 0,
    /// Metadata (process groups).
    MetadataNode = 1,
    /// A load from remote memory.
    MemLoadNode = 2,
    /// A store to remote memory.
    MemStoreNode = 3,
    /// Computation, replayed for its duration.
    CompNode = 4,
    /// A point-to-point send.
    CommSendNode = 5,
    /// A point-to-point receive.
    CommRecvNode = 6,
    /// A collective.
    CommCollNode = 7,
}

impl NodeType {
    /// Every node type, in value order.
    pub const ALL: [NodeType; 8] = [
        NodeType::InvalidNode,
        NodeType::MetadataNode,
        NodeType::MemLoadNode,
        NodeType::MemStoreNode,
        NodeType::CompNode,
        NodeType::CommSendNode,
        NodeType::CommRecvNode,
        NodeType::CommCollNode,
    ];

    /// The name the schema gives the value (`COMP_NODE`).
    pub const fn as_str_name(self) -> &'static str {
        match self {
            NodeType::InvalidNode => "INVALID_NODE",
            NodeType::MetadataNode => "METADATA_NODE",
            NodeType::MemLoadNode => "MEM_LOAD_NODE",
            NodeType::MemStoreNode => "MEM_STORE_NODE",
            NodeType::CompNode => "COMP_NODE",
            NodeType::CommSendNode => "COMM_SEND_NODE",
            NodeType::CommRecvNode => "COMM_RECV_NODE",
            NodeType::CommCollNode => "COMM_COLL_NODE",
        }
    }
}

/// The collective of a `COMM_COLL_NODE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum CollectiveCommType {
    /// All-reduce.
    AllReduce = 0,
    /// Reduce.
    Reduce = 1,
    /// All-gather.
    AllGather = 2,
    /// Gather.
    Gather = 3,
    /// Scatter.
    Scatter = 4,
    /// Broadcast.
    Broadcast = 5,
    /// All-to-all.
    AllToAll = 6,
    /// Reduce-scatter.
    ReduceScatter = 7,
    /// Reduce-scatter with equal blocks.
    ReduceScatterBlock = 8,
    /// Barrier.
    Barrier = 9,
}

impl CollectiveCommType {
    /// Every collective, in value order.
    pub const ALL: [CollectiveCommType; 10] = [
        CollectiveCommType::AllReduce,
        CollectiveCommType::Reduce,
        CollectiveCommType::AllGather,
        CollectiveCommType::Gather,
        CollectiveCommType::Scatter,
        CollectiveCommType::Broadcast,
        CollectiveCommType::AllToAll,
        CollectiveCommType::ReduceScatter,
        CollectiveCommType::ReduceScatterBlock,
        CollectiveCommType::Barrier,
    ];

    /// The name the schema gives the value (`ALL_REDUCE`).
    pub const fn as_str_name(self) -> &'static str {
        match self {
            CollectiveCommType::AllReduce => "ALL_REDUCE",
            CollectiveCommType::Reduce => "REDUCE",
            CollectiveCommType::AllGather => "ALL_GATHER",
            CollectiveCommType::Gather => "GATHER",
            CollectiveCommType::Scatter => "SCATTER",
            CollectiveCommType::Broadcast => "BROADCAST",
            CollectiveCommType::AllToAll => "ALL_TO_ALL",
            CollectiveCommType::ReduceScatter => "REDUCE_SCATTER",
            CollectiveCommType::ReduceScatterBlock => "REDUCE_SCATTER_BLOCK",
            CollectiveCommType::Barrier => "BARRIER",
        }
    }
}

/// One operation of one rank.
#[derive(Clone, PartialEq, Message)]
pub struct Node {
    /// Unique within its file.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// A readable name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// A [`NodeType`] value.
    #[prost(enumeration = "NodeType", tag = "3")]
    pub r#type: i32,
    /// Nodes this one runs after, without consuming what they produce.
    #[prost(uint64, repeated, tag = "4")]
    pub ctrl_deps: Vec<u64>,
    /// Nodes whose results this one consumes.
    #[prost(uint64, repeated, tag = "5")]
    pub data_deps: Vec<u64>,
    /// When it started, µs.
    #[prost(uint64, tag = "6")]
    pub start_time_micros: u64,
    /// How long it ran, µs.
    #[prost(uint64, tag = "7")]
    pub duration_micros: u64,
    /// Its operands.
    #[prost(message, optional, tag = "8")]
    pub inputs: Option<IoInfo>,
    /// Its results.
    #[prost(message, optional, tag = "9")]
    pub outputs: Option<IoInfo>,
    /// Attributes (`comm_src`, `num_ops`, ...).
    #[prost(message, repeated, tag = "10")]
    pub attr: Vec<AttributeProto>,
}

/// Operands or results of a node, as text (the schema's `IOInfo`).
#[derive(Clone, PartialEq, Message)]
pub struct IoInfo {
    /// Values.
    #[prost(string, tag = "1")]
    pub values: String,
    /// Shapes.
    #[prost(string, tag = "2")]
    pub shapes: String,
    /// Element types.
    #[prost(string, tag = "3")]
    pub types: String,
}

/// A tensor as a framework trace records it.
#[derive(Clone, PartialEq, Message)]
pub struct Tensor {
    /// The tensor object's id.
    #[prost(uint64, tag = "1")]
    pub tensor_id: u64,
    /// Its storage's id.
    #[prost(uint64, tag = "2")]
    pub storage_id: u64,
    /// Offset into the storage.
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    /// Elements in the storage.
    #[prost(uint64, tag = "4")]
    pub num_elem: u64,
    /// Bytes per element.
    #[prost(uint64, tag = "5")]
    pub elem_bytes: u64,
    /// Where it lives.
    #[prost(string, tag = "6")]
    pub device: String,
}

impl AttributeProto {
    /// An attribute named `name` with `value`.
    pub fn new(name: &str, value: attribute_proto::Value) -> Self {
        AttributeProto {
            name: name.to_string(),
            doc_string: String::new(),
            value: Some(value),
        }
    }
}

impl Node {
    /// The attribute named `name`, if the node has one.
    pub fn attr(&self, name: &str) -> Option<&attribute_proto::Value> {
        self.attr
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.as_ref())
    }

    /// The node's type, or `None` for a value the schema does not name.
    pub fn node_type(&self) -> Option<NodeType> {
        NodeType::try_from(self.r#type).ok()
    }
}
