//! Chakra execution traces (`kernbench export --chakra`), checked two ways:
//!
//! - the hand-written prost structs against `proto/et_def.proto`: the
//!   `.proto` text is parsed here, and every message, field number, wire type,
//!   oneof member and enum value the structs encode is read back with a small
//!   wire reader keyed by the `.proto`'s numbers;
//! - exported runs (a ring all-reduce, plain kernels, and a kernel whose two
//!   ranks share two channels) against the simulation that made them: node
//!   counts per type, dependencies against the command graph, send and
//!   receive peers, sizes and tags pairing across files, durations against
//!   the simulated spans, FLOPs against the report. Each file is decoded with
//!   the prost structs and, independently, with the wire reader.
//!
//! The checkers return `Err` rather than panicking, and the `*_rejects_*`
//! tests feed each one a broken trace, so every check is seen to fail.

use kernbench::ccl::run::{ranks, run_on, RunSpec};
use kernbench::ccl::Registry;
use kernbench::core::export::chakra::schema::{self as pb, attribute_proto::Value};
use kernbench::core::export::chakra::{self, GlobalMetadata, Node, NodeType};
use kernbench::core::ir::{CmdId, Command, DepKind, KernelArgs};
use kernbench::core::sim::lower::OpKind;
use kernbench::core::sim::{simulate_full, FabricModel, Outcome};
use kernbench::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Output};

// ---------------------------------------------------------------------------
// The .proto, parsed.

#[derive(Clone, Debug, PartialEq)]
struct Field {
    name: String,
    number: u32,
    ty: String,
    repeated: bool,
    oneof: Option<String>,
}

#[derive(Debug, Default)]
struct Proto {
    messages: BTreeMap<String, Vec<Field>>,
    enums: BTreeMap<String, Vec<(String, i32)>>,
}

fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut word = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' {
                word.push(c);
                continue;
            }
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if c == '"' {
                let s: String = chars.by_ref().take_while(|c| *c != '"').collect();
                out.push(format!("\"{s}\""));
            } else if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

fn parse_proto(text: &str) -> Result<Proto, String> {
    let t = tokens(text);
    let mut p = Proto::default();
    let mut i = 0;
    let expect = |i: &mut usize, what: &str| -> Result<(), String> {
        if t.get(*i).map(String::as_str) == Some(what) {
            *i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected `{what}` at token {i}, found {:?}",
                t.get(*i)
            ))
        }
    };
    let number = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("`{s}` is not a number"))
    };
    while i < t.len() {
        match t[i].as_str() {
            "syntax" | "package" => {
                while t.get(i).map(String::as_str) != Some(";") {
                    i += 1;
                }
                i += 1;
            }
            "enum" => {
                let name = t[i + 1].clone();
                i += 2;
                expect(&mut i, "{")?;
                let mut values = Vec::new();
                while t[i] != "}" {
                    let v = t[i].clone();
                    i += 1;
                    expect(&mut i, "=")?;
                    values.push((v, number(&t[i])? as i32));
                    i += 1;
                    expect(&mut i, ";")?;
                }
                i += 1;
                p.enums.insert(name, values);
            }
            "message" => {
                let name = t[i + 1].clone();
                i += 2;
                expect(&mut i, "{")?;
                let mut fields = Vec::new();
                let mut oneof: Option<String> = None;
                loop {
                    match t[i].as_str() {
                        "}" if oneof.is_some() => {
                            oneof = None;
                            i += 1;
                        }
                        "}" => {
                            i += 1;
                            break;
                        }
                        "oneof" => {
                            oneof = Some(t[i + 1].clone());
                            i += 2;
                            expect(&mut i, "{")?;
                        }
                        "message" | "enum" => {
                            return Err(format!("nested {} in {name}: not parsed here", t[i]))
                        }
                        _ => {
                            let repeated = t[i] == "repeated";
                            if repeated {
                                i += 1;
                            }
                            let (ty, fname) = (t[i].clone(), t[i + 1].clone());
                            i += 2;
                            expect(&mut i, "=")?;
                            let n = number(&t[i])? as u32;
                            i += 1;
                            expect(&mut i, ";")?;
                            fields.push(Field {
                                name: fname,
                                number: n,
                                ty,
                                repeated,
                                oneof: oneof.clone(),
                            });
                        }
                    }
                }
                p.messages.insert(name, fields);
            }
            other => return Err(format!("unexpected `{other}` at the top level")),
        }
    }
    Ok(p)
}

fn proto_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/et_def.proto");
    std::fs::read_to_string(path).expect("proto/et_def.proto is readable")
}

fn proto() -> Proto {
    parse_proto(&proto_text()).expect("proto/et_def.proto parses")
}

impl Proto {
    fn field(&self, msg: &str, name: &str) -> Result<&Field, String> {
        self.messages
            .get(msg)
            .ok_or_else(|| format!("the .proto has no message {msg}"))?
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("the .proto's {msg} has no field {name}"))
    }

    fn by_number(&self, msg: &str, n: u32) -> Result<&Field, String> {
        self.messages
            .get(msg)
            .ok_or_else(|| format!("the .proto has no message {msg}"))?
            .iter()
            .find(|f| f.number == n)
            .ok_or_else(|| format!("field number {n} is not in the .proto's {msg}"))
    }

    /// The wire type a field is written with (repeated numbers packed, as proto3 does).
    fn wire_type(&self, f: &Field) -> u8 {
        let scalar = match f.ty.as_str() {
            "double" | "fixed64" | "sfixed64" => 1,
            "float" | "fixed32" | "sfixed32" => 5,
            "int32" | "int64" | "uint32" | "uint64" | "sint32" | "sint64" | "bool" => 0,
            t if self.enums.contains_key(t) => 0,
            _ => 2,
        };
        if f.repeated {
            2
        } else {
            scalar
        }
    }
}

// ---------------------------------------------------------------------------
// A wire reader that knows nothing of prost.

#[derive(Clone, Debug, PartialEq)]
enum Wire<'a> {
    Varint(u64),
    I64(u64),
    Len(&'a [u8]),
    I32(u32),
}

impl Wire<'_> {
    fn kind(&self) -> u8 {
        match self {
            Wire::Varint(_) => 0,
            Wire::I64(_) => 1,
            Wire::Len(_) => 2,
            Wire::I32(_) => 5,
        }
    }
}

fn varint(b: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first().ok_or("a varint runs past the end")?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a varint is longer than 10 bytes".into())
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err(format!("{n} bytes wanted, {} left", b.len()));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

/// The fields of one message, in order.
fn fields(mut b: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (n, kind) = ((key >> 3) as u32, (key & 7) as u8);
        let w = match kind {
            0 => Wire::Varint(varint(&mut b)?),
            1 => Wire::I64(u64::from_le_bytes(take(&mut b, 8)?.try_into().unwrap())),
            2 => {
                let len = varint(&mut b)? as usize;
                Wire::Len(take(&mut b, len)?)
            }
            5 => Wire::I32(u32::from_le_bytes(take(&mut b, 4)?.try_into().unwrap())),
            k => return Err(format!("field {n}: wire type {k} is not proto3's")),
        };
        out.push((n, w));
    }
    Ok(out)
}

/// The messages of a length-delimited stream.
fn frames(mut b: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = varint(&mut b)? as usize;
        out.push(take(&mut b, len)?);
    }
    Ok(out)
}

/// The values of a packed field, read as `kind` (0 varint, 1 fixed64, 5 fixed32).
fn packed(mut b: &[u8], kind: u8) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        out.push(match kind {
            0 => varint(&mut b)?,
            1 => u64::from_le_bytes(take(&mut b, 8)?.try_into().unwrap()),
            5 => u64::from(u32::from_le_bytes(take(&mut b, 4)?.try_into().unwrap())),
            k => return Err(format!("wire type {k} cannot be packed")),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// The structs against the .proto.

/// What one field of an encoded message must hold: a logical value, which
/// the checker encodes as the `.proto` declares the field (so a field the
/// structs write as `int32` fails against a `.proto` that says `sint32`).
#[derive(Clone, Debug)]
enum Expect {
    /// One integer (integer types, `bool`, enums).
    Int(i128),
    /// One floating-point number (`double`, `float`).
    Real(f64),
    /// One length-delimited value with these bytes (strings, bytes, messages).
    Len(Vec<u8>),
    /// Length-delimited values, one per element (repeated strings, bytes, messages).
    Lens(Vec<Vec<u8>>),
    /// One packed run of integers.
    Ints(Vec<i128>),
    /// One packed run of floating-point numbers.
    Reals(Vec<f64>),
}

/// How a `.proto` scalar type writes an integer or a real: (wire type, raw value).
fn encode_as(ty: &str, int: Option<i128>, real: Option<f64>) -> Result<(u8, u64), String> {
    let i = || int.ok_or_else(|| format!("`{ty}` holds integers"));
    let r = || real.ok_or_else(|| format!("`{ty}` holds reals"));
    Ok(match ty {
        "int32" | "int64" => (0, i()? as i64 as u64),
        "uint32" | "uint64" | "bool" => (0, i()? as u64),
        "sint32" => (0, {
            let v = i()? as i32;
            ((v << 1) ^ (v >> 31)) as u32 as u64
        }),
        "sint64" => (0, {
            let v = i()? as i64;
            ((v << 1) ^ (v >> 63)) as u64
        }),
        "fixed32" | "sfixed32" => (5, u64::from(i()? as u32)),
        "fixed64" | "sfixed64" => (1, i()? as u64),
        "double" => (1, r()?.to_bits()),
        "float" => (5, u64::from((r()? as f32).to_bits())),
        // Enums.
        _ => (0, i()? as u64),
    })
}

/// Checks an encoded message of `.proto` type `msg` field by field: every
/// field on the wire is declared with its wire type, every expected field
/// holds its value, and every field of the message outside a oneof is
/// expected (so a struct that leaves one out is caught).
fn check_message(
    p: &Proto,
    msg: &str,
    bytes: &[u8],
    expect: &[(&str, Expect)],
) -> Result<(), String> {
    let wire = fields(bytes)?;
    for (n, w) in &wire {
        let f = p.by_number(msg, *n)?;
        if p.wire_type(f) != w.kind() {
            return Err(format!(
                "{msg}.{}: written with wire type {}, the .proto's `{}` needs {}",
                f.name,
                w.kind(),
                f.ty,
                p.wire_type(f)
            ));
        }
    }
    for f in &p.messages[msg] {
        if f.oneof.is_none() && !expect.iter().any(|(n, _)| *n == f.name) {
            return Err(format!("{msg}.{} of the .proto is not checked", f.name));
        }
    }
    for (name, e) in expect {
        let f = p.field(msg, name)?;
        let got: Vec<&Wire> = wire
            .iter()
            .filter(|(n, _)| *n == f.number)
            .map(|(_, w)| w)
            .collect();
        let scalar = |int, real| -> Result<Wire<'static>, String> {
            let (kind, raw) = encode_as(&f.ty, int, real)?;
            Ok(match kind {
                0 => Wire::Varint(raw),
                1 => Wire::I64(raw),
                _ => Wire::I32(raw as u32),
            })
        };
        let run =
            |ints: Vec<Option<i128>>, reals: Vec<Option<f64>>| -> Result<(u8, Vec<u64>), String> {
                let mut kind = 0;
                let mut raws = Vec::new();
                for (i, r) in ints.into_iter().zip(reals) {
                    let (k, raw) = encode_as(&f.ty, i, r)?;
                    kind = k;
                    raws.push(raw);
                }
                Ok((kind, raws))
            };
        let ok = match (e, got.as_slice()) {
            (Expect::Int(v), [g]) => scalar(Some(*v), None)? == **g,
            (Expect::Real(v), [g]) => scalar(None, Some(*v))? == **g,
            (Expect::Len(v), [Wire::Len(g)]) => v.as_slice() == *g,
            (Expect::Lens(v), g) => {
                g.len() == v.len()
                    && g.iter()
                        .zip(v)
                        .all(|(g, v)| matches!(g, Wire::Len(b) if *b == v.as_slice()))
            }
            (Expect::Ints(v), [Wire::Len(g)]) => {
                let (kind, raws) = run(v.iter().map(|x| Some(*x)).collect(), vec![None; v.len()])?;
                packed(g, kind)? == raws
            }
            (Expect::Reals(v), [Wire::Len(g)]) => {
                let (kind, raws) = run(vec![None; v.len()], v.iter().map(|x| Some(*x)).collect())?;
                packed(g, kind)? == raws
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{msg}.{name} (field {}, `{}`): expected {e:?}, the wire has {got:?}",
                f.number, f.ty
            ));
        }
    }
    Ok(())
}

fn enc(m: &impl prost::Message) -> Vec<u8> {
    m.encode_to_vec()
}

/// A message of the .proto: its name, its encoding by the Rust structs, and
/// what each field must hold.
type Case = (&'static str, Vec<u8>, Vec<(&'static str, Expect)>);

/// Every message of the .proto, built by the Rust structs with each field
/// set, and what its encoding must hold.
fn message_cases() -> Vec<Case> {
    use Expect::*;
    let io = pb::IoInfo {
        values: "v".into(),
        shapes: "[[2]]".into(),
        types: "[f32]".into(),
    };
    let attr = pb::AttributeProto::new("comm_tag", Value::Int32Val(3));
    let node = Node {
        id: 300,
        name: "%1 load".into(),
        r#type: NodeType::CommRecvNode as i32,
        ctrl_deps: vec![1, 200],
        data_deps: vec![7],
        start_time_micros: 11,
        duration_micros: 13,
        inputs: Some(io.clone()),
        outputs: Some(pb::IoInfo {
            values: "w".into(),
            ..io.clone()
        }),
        attr: vec![
            attr.clone(),
            pb::AttributeProto::new("x", Value::BoolVal(true)),
        ],
    };
    let meta = GlobalMetadata {
        version: "0.0.4".into(),
        attr: vec![attr.clone()],
    };
    let tensor = pb::Tensor {
        tensor_id: 1,
        storage_id: 2,
        offset: 3,
        num_elem: 4,
        elem_bytes: 5,
        device: "pe".into(),
    };
    let mut cases = vec![
        (
            "Node",
            enc(&node),
            vec![
                ("id", Int(300)),
                ("name", Len(b"%1 load".to_vec())),
                ("type", Int(6)),
                ("ctrl_deps", Ints(vec![1, 200])),
                ("data_deps", Ints(vec![7])),
                ("start_time_micros", Int(11)),
                ("duration_micros", Int(13)),
                ("inputs", Len(enc(&io))),
                ("outputs", Len(enc(node.outputs.as_ref().unwrap()))),
                ("attr", Lens(node.attr.iter().map(enc).collect())),
            ],
        ),
        (
            "GlobalMetadata",
            enc(&meta),
            vec![
                ("version", Len(b"0.0.4".to_vec())),
                ("attr", Lens(vec![enc(&attr)])),
            ],
        ),
        (
            "IOInfo",
            enc(&io),
            vec![
                ("values", Len(b"v".to_vec())),
                ("shapes", Len(b"[[2]]".to_vec())),
                ("types", Len(b"[f32]".to_vec())),
            ],
        ),
        (
            "Tensor",
            enc(&tensor),
            vec![
                ("tensor_id", Int(1)),
                ("storage_id", Int(2)),
                ("offset", Int(3)),
                ("num_elem", Int(4)),
                ("elem_bytes", Int(5)),
                ("device", Len(b"pe".to_vec())),
            ],
        ),
        (
            "DoubleList",
            enc(&pb::DoubleList {
                values: vec![1.5, -2.0],
            }),
            vec![("values", Reals(vec![1.5, -2.0]))],
        ),
        (
            "FloatList",
            enc(&pb::FloatList { values: vec![0.25] }),
            vec![("values", Reals(vec![0.25]))],
        ),
        (
            "Int32List",
            enc(&pb::Int32List {
                values: vec![-1, 5],
            }),
            vec![("values", Ints(vec![-1, 5]))],
        ),
        (
            "Int64List",
            enc(&pb::Int64List {
                values: vec![-2, 1 << 40],
            }),
            vec![("values", Ints(vec![-2, 1 << 40]))],
        ),
        (
            "Uint32List",
            enc(&pb::Uint32List {
                values: vec![u32::MAX],
            }),
            vec![("values", Ints(vec![i128::from(u32::MAX)]))],
        ),
        (
            "Uint64List",
            enc(&pb::Uint64List {
                values: vec![u64::MAX, 0],
            }),
            vec![("values", Ints(vec![i128::from(u64::MAX), 0]))],
        ),
        (
            "Sint32List",
            enc(&pb::Sint32List {
                values: vec![-3, 3],
            }),
            vec![("values", Ints(vec![-3, 3]))],
        ),
        (
            "Sint64List",
            enc(&pb::Sint64List { values: vec![-5] }),
            vec![("values", Ints(vec![-5]))],
        ),
        (
            "Fixed32List",
            enc(&pb::Fixed32List { values: vec![7] }),
            vec![("values", Ints(vec![7]))],
        ),
        (
            "Fixed64List",
            enc(&pb::Fixed64List {
                values: vec![1 << 50],
            }),
            vec![("values", Ints(vec![1 << 50]))],
        ),
        (
            "Sfixed32List",
            enc(&pb::Sfixed32List { values: vec![-1] }),
            vec![("values", Ints(vec![-1]))],
        ),
        (
            "Sfixed64List",
            enc(&pb::Sfixed64List { values: vec![-1] }),
            vec![("values", Ints(vec![-1]))],
        ),
        (
            "BoolList",
            enc(&pb::BoolList {
                values: vec![true, false],
            }),
            vec![("values", Ints(vec![1, 0]))],
        ),
        (
            "StringList",
            enc(&pb::StringList {
                values: vec!["a".into(), "bc".into()],
            }),
            vec![("values", Lens(vec![b"a".to_vec(), b"bc".to_vec()]))],
        ),
        (
            "BytesList",
            enc(&pb::BytesList {
                values: vec![vec![0, 255]],
            }),
            vec![("values", Lens(vec![vec![0, 255]]))],
        ),
    ];
    // AttributeProto: its plain fields once, then each oneof member alone.
    for (member, value, e) in oneof_cases() {
        let a = pb::AttributeProto {
            name: "a".into(),
            doc_string: "d".into(),
            value: Some(value),
        };
        cases.push((
            "AttributeProto",
            enc(&a),
            vec![
                ("name", Len(b"a".to_vec())),
                ("doc_string", Len(b"d".to_vec())),
                (member, e),
            ],
        ));
    }
    cases
}

/// Each member of `AttributeProto.value`: its `.proto` name, a value, and its wire form.
fn oneof_cases() -> Vec<(&'static str, Value, Expect)> {
    use Expect::*;
    vec![
        ("double_val", Value::DoubleVal(2.5), Real(2.5)),
        (
            "double_list",
            Value::DoubleList(pb::DoubleList { values: vec![1.0] }),
            Len(enc(&pb::DoubleList { values: vec![1.0] })),
        ),
        ("float_val", Value::FloatVal(-0.5), Real(-0.5)),
        (
            "float_list",
            Value::FloatList(pb::FloatList { values: vec![1.0] }),
            Len(enc(&pb::FloatList { values: vec![1.0] })),
        ),
        ("int32_val", Value::Int32Val(-7), Int(-7)),
        (
            "int32_list",
            Value::Int32List(pb::Int32List { values: vec![1] }),
            Len(enc(&pb::Int32List { values: vec![1] })),
        ),
        ("int64_val", Value::Int64Val(-(1 << 40)), Int(-(1 << 40))),
        (
            "int64_list",
            Value::Int64List(pb::Int64List { values: vec![2] }),
            Len(enc(&pb::Int64List { values: vec![2] })),
        ),
        (
            "uint32_val",
            Value::Uint32Val(u32::MAX),
            Int(i128::from(u32::MAX)),
        ),
        (
            "uint32_list",
            Value::Uint32List(pb::Uint32List { values: vec![3] }),
            Len(enc(&pb::Uint32List { values: vec![3] })),
        ),
        (
            "uint64_val",
            Value::Uint64Val(u64::MAX),
            Int(i128::from(u64::MAX)),
        ),
        (
            "uint64_list",
            Value::Uint64List(pb::Uint64List { values: vec![4] }),
            Len(enc(&pb::Uint64List { values: vec![4] })),
        ),
        ("sint32_val", Value::Sint32Val(-1), Int(-1)),
        (
            "sint32_list",
            Value::Sint32List(pb::Sint32List { values: vec![5] }),
            Len(enc(&pb::Sint32List { values: vec![5] })),
        ),
        ("sint64_val", Value::Sint64Val(-2), Int(-2)),
        (
            "sint64_list",
            Value::Sint64List(pb::Sint64List { values: vec![6] }),
            Len(enc(&pb::Sint64List { values: vec![6] })),
        ),
        ("fixed32_val", Value::Fixed32Val(11), Int(11)),
        (
            "fixed32_list",
            Value::Fixed32List(pb::Fixed32List { values: vec![7] }),
            Len(enc(&pb::Fixed32List { values: vec![7] })),
        ),
        ("fixed64_val", Value::Fixed64Val(12), Int(12)),
        (
            "fixed64_list",
            Value::Fixed64List(pb::Fixed64List { values: vec![8] }),
            Len(enc(&pb::Fixed64List { values: vec![8] })),
        ),
        ("sfixed32_val", Value::Sfixed32Val(-1), Int(-1)),
        (
            "sfixed32_list",
            Value::Sfixed32List(pb::Sfixed32List { values: vec![9] }),
            Len(enc(&pb::Sfixed32List { values: vec![9] })),
        ),
        ("sfixed64_val", Value::Sfixed64Val(-1), Int(-1)),
        (
            "sfixed64_list",
            Value::Sfixed64List(pb::Sfixed64List { values: vec![10] }),
            Len(enc(&pb::Sfixed64List { values: vec![10] })),
        ),
        ("bool_val", Value::BoolVal(true), Int(1)),
        (
            "bool_list",
            Value::BoolList(pb::BoolList { values: vec![true] }),
            Len(enc(&pb::BoolList { values: vec![true] })),
        ),
        (
            "string_val",
            Value::StringVal("s".into()),
            Len(b"s".to_vec()),
        ),
        (
            "string_list",
            Value::StringList(pb::StringList {
                values: vec!["t".into()],
            }),
            Len(enc(&pb::StringList {
                values: vec!["t".into()],
            })),
        ),
        ("bytes_val", Value::BytesVal(vec![1, 2]), Len(vec![1, 2])),
        (
            "bytes_list",
            Value::BytesList(pb::BytesList {
                values: vec![vec![3]],
            }),
            Len(enc(&pb::BytesList {
                values: vec![vec![3]],
            })),
        ),
    ]
}

/// The `.proto` name of an attribute's value: the oneof member whose number
/// prost writes it under.
fn member(p: &Proto, v: &Value) -> String {
    let bytes = enc(&pb::AttributeProto {
        name: String::new(),
        doc_string: String::new(),
        value: Some(v.clone()),
    });
    let (n, _) = fields(&bytes).expect("an attribute decodes")[0];
    p.by_number("AttributeProto", n)
        .expect("prost writes a declared member")
        .name
        .clone()
}

fn check_schema(p: &Proto) -> Result<(), String> {
    let cases = message_cases();
    for (msg, bytes, expect) in &cases {
        check_message(p, msg, bytes, expect)?;
    }
    let checked: BTreeSet<&str> = cases.iter().map(|c| c.0).collect();
    let declared: BTreeSet<&str> = p.messages.keys().map(String::as_str).collect();
    if checked != declared {
        return Err(format!(
            "messages of the .proto {declared:?} and those checked {checked:?} differ"
        ));
    }
    let members: BTreeSet<&str> = p.messages["AttributeProto"]
        .iter()
        .filter(|f| f.oneof.as_deref() == Some("value"))
        .map(|f| f.name.as_str())
        .collect();
    let covered: BTreeSet<&str> = oneof_cases().iter().map(|c| c.0).collect();
    if members != covered {
        return Err(format!(
            "oneof members {members:?} and those checked {covered:?} differ"
        ));
    }
    let check_enum = |name: &str, rust: Vec<(&'static str, i32)>| -> Result<(), String> {
        let declared: Vec<(String, i32)> = p
            .enums
            .get(name)
            .ok_or_else(|| format!("the .proto has no enum {name}"))?
            .clone();
        let rust: Vec<(String, i32)> = rust.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        if declared != rust {
            return Err(format!(
                "enum {name}: the .proto has {declared:?}, Rust {rust:?}"
            ));
        }
        Ok(())
    };
    check_enum(
        "NodeType",
        NodeType::ALL
            .iter()
            .map(|t| (t.as_str_name(), *t as i32))
            .collect(),
    )?;
    check_enum(
        "CollectiveCommType",
        pb::CollectiveCommType::ALL
            .iter()
            .map(|t| (t.as_str_name(), *t as i32))
            .collect(),
    )?;
    // Values decode back to their variants.
    for (n, v) in &p.enums["NodeType"] {
        let t = NodeType::try_from(*v).map_err(|_| format!("NodeType {v} does not decode"))?;
        if t.as_str_name() != n {
            return Err(format!(
                "NodeType {v} decodes as {}, not {n}",
                t.as_str_name()
            ));
        }
    }
    Ok(())
}

#[test]
fn the_structs_encode_what_the_proto_declares() {
    let p = proto();
    assert_eq!(p.messages.len(), 20, "{:?}", p.messages.keys());
    check_schema(&p).unwrap();
}

#[test]
fn the_schema_check_rejects_a_proto_that_disagrees_with_the_structs() {
    let text = proto_text();
    for (from, to) in [
        (
            "uint64 duration_micros = 7;",
            "uint64 duration_micros = 12;",
        ),
        ("int32 int32_val = 7;", "sint32 int32_val = 7;"),
        ("COMM_RECV_NODE = 6;", "COMM_RECV_NODE = 8;"),
        (
            "  string doc_string = 2;\n",
            "  string doc_string = 2;\n  string extra = 40;\n",
        ),
        ("message Tensor {", "message Tensor2 {"),
        (
            "    bytes bytes_val = 31;\n",
            "    bytes bytes_val = 31;\n    bool flag = 33;\n",
        ),
        ("repeated uint64 ctrl_deps = 4;", "uint64 ctrl_deps = 4;"),
    ] {
        assert!(text.contains(from), "{from}");
        let p = parse_proto(&text.replacen(from, to, 1)).unwrap();
        assert!(check_schema(&p).is_err(), "`{from}` -> `{to}` passed");
    }
}

// ---------------------------------------------------------------------------
// A trace file read with the wire reader, keyed by the .proto's numbers.

/// A node as the wire reader sees it.
#[derive(Clone, Debug, PartialEq)]
struct WireNode {
    id: u64,
    name: String,
    ty: u64,
    ctrl: Vec<u64>,
    data: Vec<u64>,
    start: u64,
    dur: u64,
    /// Attribute name -> (oneof member, raw value: varint, bits or bytes).
    attrs: BTreeMap<String, (String, Vec<u8>)>,
}

fn wire_attr(p: &Proto, b: &[u8]) -> Result<(String, (String, Vec<u8>)), String> {
    let mut name = None;
    let mut value = None;
    for (n, w) in fields(b)? {
        let f = p.by_number("AttributeProto", n)?;
        let raw = match w {
            Wire::Varint(v) | Wire::I64(v) => v.to_le_bytes().to_vec(),
            Wire::I32(v) => v.to_le_bytes().to_vec(),
            Wire::Len(b) => b.to_vec(),
        };
        match (f.name.as_str(), &f.oneof) {
            ("name", _) => name = Some(String::from_utf8(raw).map_err(|e| e.to_string())?),
            (_, Some(_)) => value = Some((f.name.clone(), raw)),
            _ => {}
        }
    }
    Ok((
        name.ok_or("an attribute without a name")?,
        value.ok_or("an attribute without a value")?,
    ))
}

/// A file with the wire reader: (version, metadata attributes, nodes).
#[allow(clippy::type_complexity)]
fn wire_file(
    p: &Proto,
    bytes: &[u8],
) -> Result<(String, BTreeMap<String, (String, Vec<u8>)>, Vec<WireNode>), String> {
    let frames = frames(bytes)?;
    let (meta, nodes) = frames.split_first().ok_or("an empty file")?;
    let mut version = String::new();
    let mut mattrs = BTreeMap::new();
    for (n, w) in fields(meta)? {
        match (p.by_number("GlobalMetadata", n)?.name.as_str(), w) {
            ("version", Wire::Len(b)) => {
                version = String::from_utf8(b.to_vec()).map_err(|e| e.to_string())?
            }
            ("attr", Wire::Len(b)) => {
                let (k, v) = wire_attr(p, b)?;
                mattrs.insert(k, v);
            }
            (f, w) => return Err(format!("GlobalMetadata.{f}: unexpected {w:?}")),
        }
    }
    let mut out = Vec::new();
    for b in nodes {
        let mut node = WireNode {
            id: 0,
            name: String::new(),
            ty: 0,
            ctrl: vec![],
            data: vec![],
            start: 0,
            dur: 0,
            attrs: BTreeMap::new(),
        };
        for (n, w) in fields(b)? {
            let f = p.by_number("Node", n)?;
            match (f.name.as_str(), w) {
                ("id", Wire::Varint(v)) => node.id = v,
                ("name", Wire::Len(b)) => {
                    node.name = String::from_utf8(b.to_vec()).map_err(|e| e.to_string())?
                }
                ("type", Wire::Varint(v)) => node.ty = v,
                ("ctrl_deps", Wire::Len(b)) => node.ctrl = packed(b, 0)?,
                ("data_deps", Wire::Len(b)) => node.data = packed(b, 0)?,
                ("start_time_micros", Wire::Varint(v)) => node.start = v,
                ("duration_micros", Wire::Varint(v)) => node.dur = v,
                ("attr", Wire::Len(b)) => {
                    let (k, v) = wire_attr(p, b)?;
                    node.attrs.insert(k, v);
                }
                (f, w) => return Err(format!("Node.{f}: unexpected {w:?}")),
            }
        }
        out.push(node);
    }
    Ok((version, mattrs, out))
}

/// The same node as prost decoded it, in the wire reader's terms.
fn as_wire(p: &Proto, n: &Node) -> WireNode {
    WireNode {
        id: n.id,
        name: n.name.clone(),
        ty: n.r#type as u64,
        ctrl: n.ctrl_deps.clone(),
        data: n.data_deps.clone(),
        start: n.start_time_micros,
        dur: n.duration_micros,
        attrs: n
            .attr
            .iter()
            .map(|a| {
                let v = a.value.as_ref().expect("every attribute has a value");
                let raw = match v {
                    Value::Int32Val(x) => (i64::from(*x) as u64).to_le_bytes().to_vec(),
                    Value::Int64Val(x) => (*x as u64).to_le_bytes().to_vec(),
                    Value::Uint64Val(x) => x.to_le_bytes().to_vec(),
                    Value::BoolVal(x) => u64::from(*x).to_le_bytes().to_vec(),
                    Value::StringVal(s) => s.as_bytes().to_vec(),
                    other => panic!("the export writes no {}", member(p, other)),
                };
                (a.name.clone(), (member(p, v), raw))
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// Exported traces against the simulation.

/// One decoded file.
struct Decoded {
    meta: GlobalMetadata,
    nodes: Vec<Node>,
}

fn int(n: &Node, name: &str) -> Result<i64, String> {
    match n.attr(name) {
        Some(Value::Int32Val(v)) => Ok(i64::from(*v)),
        Some(Value::Int64Val(v)) => Ok(*v),
        Some(Value::Uint64Val(v)) => i64::try_from(*v).map_err(|e| e.to_string()),
        other => Err(format!(
            "node {} ({}): attribute {name} is {other:?}",
            n.id, n.name
        )),
    }
}

/// The span the simulation gave each command of `rank`: from the first
/// start to the last end of its engine ops (its issue when it has none),
/// and for a send until its last byte left.
fn spans(out: &Outcome, rank: usize) -> Vec<(u64, u64)> {
    let prog = &out.programs[rank];
    let n = out.graphs[rank].len();
    let mut work: Vec<Option<(u64, u64)>> = vec![None; n];
    let mut issue: Vec<Option<(u64, u64)>> = vec![None; n];
    for s in out.spans.iter().filter(|s| s.inst as usize == rank) {
        let op = &prog.ops[s.op as usize];
        let slot = if matches!(op.kind, OpKind::Issue) {
            &mut issue[op.cmd.index()]
        } else {
            &mut work[op.cmd.index()]
        };
        *slot = Some(slot.map_or((s.start, s.end), |(a, b)| (a.min(s.start), b.max(s.end))));
    }
    for m in out.messages.iter().filter(|m| m.src as usize == rank) {
        let c = prog.ops[m.send_op as usize].cmd.index();
        if let Some(w) = work[c].as_mut() {
            w.1 = w.1.max(m.injected_ps);
        }
    }
    (0..n)
        .map(|c| work[c].or(issue[c]).expect("every command ran"))
        .collect()
}

/// Checks decoded traces against the outcome that made them; `peer` gives
/// the rank a send or receive of `rank` talks to, from the neighbour map.
fn check_traces(
    out: &Outcome,
    files: &[Decoded],
    peer: &dyn Fn(usize, &Command) -> usize,
) -> Result<(), String> {
    let n = out.report.pes.len();
    if files.len() != n {
        return Err(format!("{} files for {n} ranks", files.len()));
    }
    // (src, dst, tag, size) of every send and every receive.
    let mut sends: BTreeMap<(i64, i64, i64, i64), usize> = BTreeMap::new();
    let mut recvs: BTreeMap<(i64, i64, i64, i64), usize> = BTreeMap::new();
    for (rank, f) in files.iter().enumerate() {
        let g = &out.graphs[rank];
        let meta_int = |k: &str| match f
            .meta
            .attr
            .iter()
            .find(|a| a.name == k)
            .and_then(|a| a.value.clone())
        {
            Some(Value::Int64Val(v)) => Ok(v),
            other => Err(format!("rank {rank}: metadata {k} is {other:?}")),
        };
        if f.meta.version != chakra::VERSION
            || meta_int("rank")? != rank as i64
            || meta_int("world")? != n as i64
        {
            return Err(format!("rank {rank}: metadata {:?}", f.meta));
        }
        // Node counts per type, from the command graph.
        let mut want: BTreeMap<NodeType, usize> = BTreeMap::new();
        for (_, node) in g.nodes() {
            let t = match node.cmd {
                Command::Send { .. } => NodeType::CommSendNode,
                Command::Recv { .. } => NodeType::CommRecvNode,
                _ => NodeType::CompNode,
            };
            *want.entry(t).or_default() += 1;
        }
        let mut got: BTreeMap<NodeType, usize> = BTreeMap::new();
        for node in &f.nodes {
            let t = node
                .node_type()
                .ok_or(format!("rank {rank}: node type {}", node.r#type))?;
            *got.entry(t).or_default() += 1;
        }
        if got != want {
            return Err(format!(
                "rank {rank}: nodes per type {got:?}, the graph has {want:?}"
            ));
        }
        let spans = spans(out, rank);
        let mut last_block: Option<u64> = None;
        let mut flops = 0i64;
        for (k, node) in f.nodes.iter().enumerate() {
            let id = CmdId(k as u32);
            let cmd = &g.node(id).cmd;
            let at = format!("rank {rank} node {} ({})", node.id, node.name);
            if node.id != k as u64 || !node.name.contains(cmd.mnemonic()) {
                return Err(format!("{at}: expected command %{k} {}", cmd.mnemonic()));
            }
            // Dependencies: data from the graph; ordering from the graph plus
            // the last blocking receive or wait.
            let deps = g.deps(id);
            let data: Vec<u64> = deps
                .iter()
                .filter(|d| d.1 == DepKind::Data)
                .map(|d| u64::from(d.0 .0))
                .collect();
            let mut ctrl: Vec<u64> = deps
                .iter()
                .filter(|d| d.1 == DepKind::Order)
                .map(|d| u64::from(d.0 .0))
                .collect();
            if let Some(b) = last_block {
                if !data.contains(&b) && !ctrl.contains(&b) {
                    ctrl.push(b);
                    ctrl.sort_unstable();
                }
            }
            if node.data_deps != data || node.ctrl_deps != ctrl {
                return Err(format!(
                    "{at}: deps data {:?} ctrl {:?}, expected data {data:?} ctrl {ctrl:?}",
                    node.data_deps, node.ctrl_deps
                ));
            }
            if matches!(
                cmd,
                Command::Recv {
                    is_async: false,
                    ..
                } | Command::Wait { .. }
            ) {
                last_block = Some(k as u64);
            }
            // Durations: exact in ps, whole µs to the nearest, positive when the span is.
            let (s, e) = spans[k];
            let span = e - s;
            if int(node, "duration_ps")? != span as i64
                || int(node, "start_ps")? != (s - out.report.start_ps) as i64
            {
                return Err(format!(
                    "{at}: span {s}..{e} ps, the node says {:?} {:?}",
                    node.attr("start_ps"),
                    node.attr("duration_ps")
                ));
            }
            let us = node.duration_micros;
            let near = (span + 500_000) / 1_000_000;
            if (span > 0) != (us > 0) || (us != near && !(near == 0 && us == 1)) {
                return Err(format!("{at}: {span} ps written as {us} us"));
            }
            // Attributes ASTRA-sim reads.
            if node.attr("is_cpu_op") != Some(&Value::BoolVal(false)) {
                return Err(format!("{at}: is_cpu_op {:?}", node.attr("is_cpu_op")));
            }
            let bytes = g.node(id).ty.bytes() as i64;
            match cmd {
                Command::Send { .. } | Command::Recv { .. } => {
                    let key = (
                        int(node, "comm_src")?,
                        int(node, "comm_dst")?,
                        int(node, "comm_tag")?,
                        int(node, "comm_size")?,
                    );
                    let me = rank as i64;
                    let other = peer(rank, cmd) as i64;
                    let (want_src, want_dst, map) = if matches!(cmd, Command::Send { .. }) {
                        (me, other, &mut sends)
                    } else {
                        (other, me, &mut recvs)
                    };
                    if (key.0, key.1, key.3) != (want_src, want_dst, bytes) {
                        return Err(format!(
                            "{at}: comm {key:?}, expected {want_src} -> {want_dst}, {bytes} B"
                        ));
                    }
                    if map.insert(key, rank).is_some() {
                        return Err(format!(
                            "{at}: a second message {key:?}: ASTRA-sim could not tell them apart"
                        ));
                    }
                }
                _ => {
                    flops += int(node, "num_ops")?;
                    let ts = int(node, "tensor_size")?;
                    if matches!(cmd, Command::Load { .. } | Command::Store { .. }) && ts != bytes {
                        return Err(format!("{at}: tensor_size {ts}, it moves {bytes} B"));
                    }
                }
            }
        }
        if flops != out.report.pes[rank].flops as i64 {
            return Err(format!(
                "rank {rank}: num_ops add up to {flops}, the report counts {}",
                out.report.pes[rank].flops
            ));
        }
    }
    // Every send has exactly one receive with its source, destination, tag and size.
    let (s, r): (BTreeSet<_>, BTreeSet<_>) = (sends.keys().collect(), recvs.keys().collect());
    if s != r {
        let lonely: Vec<_> = s.symmetric_difference(&r).take(4).collect();
        return Err(format!("sends and receives do not pair up: {lonely:?}"));
    }
    // Tags of one pair of ranks: 0, 1, 2, ... over its messages.
    let mut per_pair: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
    for (src, dst, tag, _) in sends.keys() {
        per_pair.entry((*src, *dst)).or_default().push(*tag);
    }
    for ((src, dst), mut tags) in per_pair {
        tags.sort_unstable();
        if tags.iter().enumerate().any(|(k, t)| *t != k as i64) {
            return Err(format!(
                "{src} -> {dst}: tags {tags:?}, not 0..{}",
                tags.len()
            ));
        }
    }
    Ok(())
}

/// Decodes each file with prost and, independently, with the wire reader, and requires them to agree.
fn read_files(p: &Proto, paths: &[PathBuf]) -> Result<Vec<Decoded>, String> {
    let mut out = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (meta, nodes) =
            chakra::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let (version, mattrs, wnodes) = wire_file(p, &bytes)?;
        if version != meta.version || mattrs.len() != meta.attr.len() {
            return Err(format!(
                "{}: metadata differs between readers",
                path.display()
            ));
        }
        let pnodes: Vec<WireNode> = nodes.iter().map(|n| as_wire(p, n)).collect();
        if wnodes != pnodes {
            let k = wnodes.iter().zip(&pnodes).position(|(a, b)| a != b);
            return Err(format!(
                "{}: the wire reader and prost disagree (node {k:?}; {} vs {} nodes)",
                path.display(),
                wnodes.len(),
                pnodes.len()
            ));
        }
        // The member types ASTRA-sim's feeders read.
        for n in &wnodes {
            for (attr, member) in [
                ("comm_src", "int32_val"),
                ("comm_dst", "int32_val"),
                ("comm_tag", "int32_val"),
                ("comm_size", "int64_val"),
                ("num_ops", "int64_val"),
                ("tensor_size", "uint64_val"),
                ("is_cpu_op", "bool_val"),
            ] {
                if let Some((m, _)) = n.attrs.get(attr) {
                    if m != member {
                        return Err(format!(
                            "node {}: {attr} is a {m}, ASTRA-sim reads a {member}",
                            n.id
                        ));
                    }
                }
            }
        }
        out.push(Decoded { meta, nodes });
    }
    Ok(out)
}

fn kernbench(args: &[&str]) -> Output {
    Proc::new(env!("CARGO_BIN_EXE_kernbench"))
        .args(args)
        .output()
        .expect("the kernbench binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kernbench-chakra-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Runs `kernbench export --chakra DIR ARGS...` and returns the files it wrote for `ranks` ranks.
fn export(dir: &Path, name: &str, extra: &[&str], ranks: usize) -> Vec<PathBuf> {
    let d = dir.to_str().unwrap();
    let mut args = vec!["export", "--chakra", d, name, "--topology", "tiny"];
    args.extend_from_slice(extra);
    let o = kernbench(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains(&format!("--workload-configuration={d}/{name}")),
        "{stdout}"
    );
    let files: Vec<PathBuf> = (0..ranks)
        .map(|r| dir.join(chakra::file_name(name, r)))
        .collect();
    let on_disk = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(on_disk, ranks, "files in {d}");
    files
}

fn peer_by_map(pes: Vec<PeId>, map: NeighborMap) -> impl Fn(usize, &Command) -> usize {
    move |rank, cmd| {
        let peer = match cmd {
            Command::Send { peer, .. } | Command::Recv { peer, .. } => *peer,
            other => panic!("{} has no peer", other.mnemonic()),
        };
        let dir = match peer {
            Peer::Dir(d) => d,
            Peer::Rank(r) => return r as usize,
        };
        let q = map.peer(pes[rank], dir).expect("the map names the peer");
        pes.iter()
            .position(|p| *p == q)
            .expect("the peer is a rank")
    }
}

/// The library's traces of an outcome, decoded as files would be.
fn library(out: &Outcome) -> Vec<Decoded> {
    chakra::traces(out)
        .unwrap()
        .into_iter()
        .map(|t| {
            let (meta, nodes) = chakra::decode(&t.encode()).unwrap();
            Decoded { meta, nodes }
        })
        .collect()
}

fn ring_allreduce_outcome() -> (Outcome, Vec<PeId>) {
    let topo = Topology::builtin("tiny").unwrap();
    let algo = Registry::builtin().get("ring_allreduce").unwrap().clone();
    let pes = ranks(&topo, &algo).unwrap();
    let mut spec = RunSpec::timing(16 * 1024 / 4, DType::F32, FabricModel::Messages);
    spec.trace = true;
    (run_on(&topo, &algo, &pes, &spec).unwrap().outcome, pes)
}

#[test]
fn a_ring_allreduce_exports_one_trace_per_rank_that_matches_its_run() {
    let p = proto();
    let dir = temp_dir("ring");
    let files = export(&dir, "ring_allreduce", &["--size", "16K"], 16);
    let (out, pes) = ring_allreduce_outcome();
    let decoded = read_files(&p, &files).unwrap();
    // The command wrote what the library makes of the same launch.
    let lib = library(&out);
    for (r, (f, l)) in decoded.iter().zip(&lib).enumerate() {
        assert!(
            f.meta == l.meta && f.nodes == l.nodes,
            "rank {r}: the command and the library differ"
        );
    }
    let peer = peer_by_map(pes.clone(), NeighborMap::ring(&pes).unwrap());
    check_traces(&out, &decoded, &peer).unwrap();
    // A ring all-reduce over 16 ranks: every rank sends and receives 2(n-1) segments at least.
    for f in &decoded {
        let sends = f
            .nodes
            .iter()
            .filter(|n| n.node_type() == Some(NodeType::CommSendNode))
            .count();
        assert!(sends >= 30, "{sends} sends");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The outcome `kernbench export` simulates for a kernel: buffers allocated
/// in parameter order over the PEs, the ring map installed, timing only.
fn kernel_outcome(
    kernel: &dyn kernbench::core::program::Program,
    pes: usize,
    bufs: &[(&str, DType, usize, Option<[usize; 2]>)],
    ints: &[(&str, i64)],
) -> (Outcome, Vec<PeId>) {
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<PeId> = topo.pes().take(pes).collect();
    let mut m = Machine::new(topo).unwrap();
    let mut args = KernelArgs::new();
    for (name, dtype, len, shape) in bufs {
        let b = m.alloc(*dtype, *len, &pes).unwrap();
        let v = match shape {
            Some([r, c]) => b.tensor(*r, *c).unwrap(),
            None => b.ptr(),
        };
        args = args.with(name, v);
    }
    for (name, v) in ints {
        args = args.int(name, *v);
    }
    let launch = Launch::new(kernel, args, pes.clone())
        .data(false)
        .trace(true)
        .neighbors(NeighborMap::ring(&pes).unwrap());
    (simulate_full(&mut m, &launch).unwrap(), pes)
}

#[test]
fn plain_kernels_export_compute_nodes_that_match_their_runs() {
    let p = proto();
    let dir = temp_dir("kernels");
    let set = [
        "--set",
        "x.len=4096",
        "--set",
        "y.len=4096",
        "--set",
        "z.len=4096",
        "--set",
        "n=4096",
        "--set",
        "block=1024",
    ];
    let mut extra = vec!["--pes", "4"];
    extra.extend_from_slice(&set);
    let files = export(&dir.join("vadd"), "vector_add", &extra, 4);
    let (out, pes) = kernel_outcome(
        &kernbench::kernels::vector_add,
        4,
        &[
            ("x", DType::F32, 4096, None),
            ("y", DType::F32, 4096, None),
            ("z", DType::F32, 4096, None),
        ],
        &[("n", 4096), ("block", 1024)],
    );
    let decoded = read_files(&p, &files).unwrap();
    let peer = peer_by_map(pes.clone(), NeighborMap::ring(&pes).unwrap());
    check_traces(&out, &decoded, &peer).unwrap();
    for (f, l) in decoded.iter().zip(library(&out)) {
        assert!(f.nodes == l.nodes, "the command and the library differ");
        // load, load, add, store: compute nodes only; the store reads the add.
        let types: Vec<_> = f.nodes.iter().map(|n| n.node_type().unwrap()).collect();
        assert_eq!(types, vec![NodeType::CompNode; 4]);
        assert_eq!(f.nodes[3].data_deps, vec![2]);
        assert!(f.nodes.iter().all(|n| n.duration_micros >= 1));
    }

    // A GEMM on one PE: its FLOPs land on the dot's node.
    let files = export(
        &dir.join("gemm"),
        "gemm_f16",
        &[
            "--pes",
            "1",
            "--set",
            "a=128x128",
            "--set",
            "b=128x128",
            "--set",
            "c=128x128",
        ],
        1,
    );
    let (out, pes) = kernel_outcome(
        &kernbench::kernels::gemm,
        1,
        &[
            ("a", DType::F16, 128 * 128, Some([128, 128])),
            ("b", DType::F16, 128 * 128, Some([128, 128])),
            ("c", DType::F32, 128 * 128, Some([128, 128])),
        ],
        &[],
    );
    let decoded = read_files(&p, &files).unwrap();
    let peer = peer_by_map(pes.clone(), NeighborMap::ring(&pes).unwrap());
    check_traces(&out, &decoded, &peer).unwrap();
    let dot = decoded[0]
        .nodes
        .iter()
        .find(|n| n.name.contains("dot"))
        .expect("a dot node");
    assert_eq!(int(dot, "num_ops").unwrap(), 2 * 128 * 128 * 128);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two ranks that send each other a tile both ways round a ring of two: the
/// pair shares two channels, so tags must tell their messages apart.
#[kernel]
fn both_ways(t: Ptr<f32>, n: usize) {
    let rank = tl::program_id(0);
    let x = tl::load(t.offset(rank * n), [n]);
    tl::send(Dir::E, &x);
    tl::send(Dir::W, &x);
    let a = tl::recv::<f32>(Dir::W, [n]);
    let b = tl::recv::<f32>(Dir::E, [n]);
    tl::store(t.offset(rank * n), &(a + b));
}

#[test]
fn ranks_that_share_two_channels_get_distinct_tags() {
    let (out, pes) = kernel_outcome(
        &both_ways,
        2,
        &[("t", DType::F32, 2048, None)],
        &[("n", 1024)],
    );
    let decoded = library(&out);
    let peer = peer_by_map(pes.clone(), NeighborMap::ring(&pes).unwrap());
    check_traces(&out, &decoded, &peer).unwrap();
    let tags: BTreeSet<i64> = decoded[0]
        .nodes
        .iter()
        .filter(|n| n.node_type() == Some(NodeType::CommSendNode))
        .map(|n| int(n, "comm_tag").unwrap())
        .collect();
    assert_eq!(tags, BTreeSet::from([0, 1]));
    // The store comes after the last blocking receive (%4) in program order.
    let store = decoded[0]
        .nodes
        .iter()
        .find(|n| n.name.contains("store"))
        .unwrap();
    assert!(store.ctrl_deps.contains(&4), "{store:?}");
}

#[test]
fn the_trace_checks_reject_broken_traces() {
    let (out, pes) = ring_allreduce_outcome();
    let peer = peer_by_map(pes.clone(), NeighborMap::ring(&pes).unwrap());
    let good = library(&out);
    check_traces(&out, &good, &peer).unwrap();
    let find = |f: &Decoded, t: NodeType| {
        f.nodes
            .iter()
            .position(|n| n.node_type() == Some(t))
            .unwrap()
    };
    let set_attr = |n: &mut Node, name: &str, v: Value| {
        n.attr.iter_mut().find(|a| a.name == name).unwrap().value = Some(v);
    };
    type Break = Box<dyn Fn(&mut Vec<Decoded>)>;
    let breaks: Vec<(&str, Break)> = vec![
        (
            "a node changes type",
            Box::new(move |f| {
                let k = find(&f[0], NodeType::CommSendNode);
                f[0].nodes[k].r#type = NodeType::CompNode as i32;
            }),
        ),
        (
            "a data dependency is dropped",
            Box::new(|f| {
                let k = f[1]
                    .nodes
                    .iter()
                    .position(|n| !n.data_deps.is_empty())
                    .unwrap();
                f[1].nodes[k].data_deps.pop();
            }),
        ),
        (
            "a blocking dependency is dropped",
            Box::new(|f| {
                let k = f[1]
                    .nodes
                    .iter()
                    .rposition(|n| n.ctrl_deps.len() == 1 && n.data_deps.is_empty())
                    .unwrap();
                f[1].nodes[k].ctrl_deps.clear();
            }),
        ),
        (
            "a duration is zeroed",
            Box::new(|f| {
                let k = f[2]
                    .nodes
                    .iter()
                    .position(|n| n.duration_micros > 0)
                    .unwrap();
                f[2].nodes[k].duration_micros = 0;
            }),
        ),
        (
            "a send goes to the wrong peer",
            Box::new(move |f| {
                let k = find(&f[3], NodeType::CommSendNode);
                set_attr(&mut f[3].nodes[k], "comm_dst", Value::Int32Val(7));
            }),
        ),
        (
            "a receive's tag is wrong",
            Box::new(move |f| {
                let k = find(&f[4], NodeType::CommRecvNode);
                let t = int(&f[4].nodes[k], "comm_tag").unwrap() as i32;
                set_attr(&mut f[4].nodes[k], "comm_tag", Value::Int32Val(t + 1000));
            }),
        ),
        (
            "a send's size is wrong",
            Box::new(move |f| {
                let k = find(&f[5], NodeType::CommSendNode);
                set_attr(&mut f[5].nodes[k], "comm_size", Value::Int64Val(1));
            }),
        ),
        (
            "FLOPs are lost",
            Box::new(move |f| {
                let k = f[6]
                    .nodes
                    .iter()
                    .position(|n| int(n, "num_ops").is_ok_and(|v| v > 0))
                    .unwrap();
                set_attr(&mut f[6].nodes[k], "num_ops", Value::Int64Val(0));
            }),
        ),
        (
            "a rank's file is missing",
            Box::new(|f| {
                f.pop();
            }),
        ),
        ("two files swap", Box::new(|f| f.swap(0, 1))),
    ];
    for (what, brk) in breaks {
        let mut bad = library(&out);
        brk(&mut bad);
        assert!(check_traces(&out, &bad, &peer).is_err(), "{what}: passed");
    }
}

#[test]
fn the_wire_reader_rejects_files_that_disagree_with_prost_or_the_schema() {
    let p = proto();
    let dir = temp_dir("wire");
    std::fs::create_dir_all(&dir).unwrap();
    let (out, _) = ring_allreduce_outcome();
    let t = &chakra::traces(&out).unwrap()[0];
    let good = dir.join("good.0.et");
    std::fs::write(&good, t.encode()).unwrap();
    read_files(&p, std::slice::from_ref(&good)).unwrap();
    // An attribute ASTRA-sim reads as int32 written as int64.
    let mut t2 = t.clone();
    let k = t2
        .nodes
        .iter()
        .position(|n| n.attr("comm_src").is_some())
        .unwrap();
    t2.nodes[k]
        .attr
        .iter_mut()
        .find(|a| a.name == "comm_src")
        .unwrap()
        .value = Some(Value::Int64Val(1));
    // A .proto whose Node numbers disagree with what was written.
    let moved = parse_proto(
        &proto_text()
            .replacen(
                "uint64 duration_micros = 7;",
                "uint64 duration_micros = 6;",
                1,
            )
            .replacen(
                "uint64 start_time_micros = 6;",
                "uint64 start_time_micros = 7;",
                1,
            ),
    )
    .unwrap();
    let bad = dir.join("bad.0.et");
    std::fs::write(&bad, t2.encode()).unwrap();
    assert!(
        read_files(&p, std::slice::from_ref(&bad)).is_err(),
        "an int64 comm_src passed"
    );
    assert!(
        read_files(&moved, std::slice::from_ref(&good)).is_err(),
        "swapped numbers passed"
    );
    // A cut file.
    let bytes = t.encode();
    std::fs::write(&bad, &bytes[..bytes.len() - 3]).unwrap();
    assert!(
        read_files(&p, std::slice::from_ref(&bad)).is_err(),
        "a cut file passed"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let into = dir.join("never");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "export".into(),
                "--chakra".into(),
                into.display().to_string(),
                "no_such_algorithm".into(),
                "--topology".into(),
                "tiny".into(),
            ],
            "no_such_algorithm",
        ),
        (
            vec![
                "export".into(),
                "--chakra".into(),
                file.join("sub").display().to_string(),
                "ring_allreduce".into(),
                "--topology".into(),
                "tiny".into(),
            ],
            "cannot create",
        ),
        (
            vec![
                "export".into(),
                "--chakra".into(),
                file.display().to_string(),
                "ring_allreduce".into(),
                "--topology".into(),
                "tiny".into(),
            ],
            "not a folder",
        ),
        (vec!["export".into(), "ring_allreduce".into()], "--chakra"),
        (
            vec![
                "export".into(),
                "--chakra".into(),
                into.display().to_string(),
                "ring_allreduce".into(),
                "--topology".into(),
                "no_such_machine".into(),
            ],
            "no_such_machine",
        ),
    ];
    for (args, says) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = kernbench(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("error:") && err.contains(says),
            "{args:?}: {err}"
        );
    }
    // A run that never started leaves no folder behind.
    assert!(!into.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_outcome_without_a_trace_is_refused() {
    let topo = Topology::builtin("tiny").unwrap();
    let algo = Registry::builtin().get("ring_allreduce").unwrap().clone();
    let pes = ranks(&topo, &algo).unwrap();
    let spec = RunSpec::timing(1024, DType::F32, FabricModel::Messages);
    let out = run_on(&topo, &algo, &pes, &spec).unwrap().outcome;
    let e = chakra::traces(&out).unwrap_err();
    assert!(matches!(e, chakra::ChakraError::NoTrace), "{e}");
    assert!(e.to_string().contains("trace"), "{e}");
}
