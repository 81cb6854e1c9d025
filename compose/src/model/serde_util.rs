//! Serde helpers shared by the model types.
//!
//! The loader normalises short forms, but a few long-form keys are still polymorphic in the
//! specification (numbers that may arrive as strings, octal modes, `count: all`, …). These helpers
//! accept those variants on input and always write the single form `docker compose config` prints.

use std::ops::{Deref, DerefMut};

use indexmap::IndexMap;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// `x-*` extension keys of an object; any other unknown key is dropped on input.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Extensions(pub IndexMap<String, Value>);

impl Extensions {
    /// Whether `key` names an extension (`x-` prefix, as the schema's `patternProperties`).
    pub fn is_extension_key(key: &str) -> bool {
        key.starts_with("x-")
    }
}

impl Deref for Extensions {
    type Target = IndexMap<String, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Extensions {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'de> Deserialize<'de> for Extensions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `#[serde(flatten)]` hands us every key the struct did not claim; the loader has already
        // validated them against the schema, so anything but `x-*` is safe to drop.
        let mut map = IndexMap::<String, Value>::deserialize(deserializer)?;
        map.retain(|k, _| Self::is_extension_key(k));
        Ok(Extensions(map))
    }
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Renders a scalar JSON value as the string compose-go would hold for it.
fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A value as the scalar helpers need it: scalars as they are, collections only by kind (their
/// contents are skipped). Reading a string this way builds no `Value` tree.
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    List,
    Mapping,
}

impl Scalar {
    /// The value as JSON; a collection stands as an empty one (only its kind is known).
    fn into_value(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Number(n) => Value::Number(n),
            Scalar::String(s) => Value::String(s),
            Scalar::List => Value::Array(Vec::new()),
            Scalar::Mapping => Value::Object(serde_json::Map::new()),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Scalar;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(i.into()))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(u.into()))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Scalar, E> {
                // As `serde_json::Value` reads it: a non-finite float is null.
                Ok(serde_json::Number::from_f64(f).map_or(Scalar::Null, Scalar::Number))
            }
            fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Scalar, E> {
                Ok(Scalar::String(s))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Scalar, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::List)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Scalar, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Scalar::Mapping)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A mapping's entries in order, values read as [`Scalar`]s.
struct ScalarEntries(Vec<(String, Scalar)>);

impl<'de> Deserialize<'de> for ScalarEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ScalarEntries;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ScalarEntries, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<String, Scalar>()? {
                    entries.push(entry);
                }
                Ok(ScalarEntries(entries))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Builds a map from a mapping whose values `convert` turns into `T` (or explains why not).
fn scalar_map<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    convert: impl Fn(&str, Scalar) -> Result<T, String>,
) -> Result<IndexMap<String, T>, D::Error> {
    let entries = Option::<ScalarEntries>::deserialize(deserializer)?.map_or(Vec::new(), |e| e.0);
    let mut out = IndexMap::with_capacity(entries.len());
    for (k, v) in entries {
        let v = convert(&k, v).map_err(D::Error::custom)?;
        out.insert(k, v);
    }
    Ok(out)
}

/// Map whose values are strings; numbers and booleans are stringified (`driver_opts`, `labels`…).
pub(crate) mod string_map {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<IndexMap<String, String>, D::Error> {
        scalar_map(deserializer, |k, v| {
            let v = v.into_value();
            scalar_to_string(&v).ok_or_else(|| {
                format!(
                    "value of `{k}` must be a string or a number, found {}",
                    describe(&v)
                )
            })
        })
    }
}

/// Map whose values may be null (`environment`, `build.args`): null means "no value".
pub(crate) mod nullable_map {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<IndexMap<String, Option<String>>, D::Error> {
        scalar_map(deserializer, |k, v| match v.into_value() {
            Value::Null => Ok(None),
            other => scalar_to_string(&other).map(Some).ok_or_else(|| {
                format!(
                    "value of `{k}` must be a string, a number or null, found {}",
                    describe(&other)
                )
            }),
        })
    }
}

/// List of strings whose items may be numbers (`expose`, `group_add`).
pub(crate) mod string_list {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<String>, D::Error> {
        let raw = Option::<Value>::deserialize(deserializer)?;
        let items = match raw {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            // string_or_list in the schema: a lone scalar is a one-item list.
            Some(other) => vec![other],
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(_) | Value::Number(_) => scalar_to_string(v).ok_or_else(|| {
                    D::Error::custom("list items must be strings or numbers".to_string())
                }),
                other => Err(D::Error::custom(format!(
                    "list items must be strings or numbers, found {}",
                    describe(other)
                ))),
            })
            .collect()
    }
}

/// Optional string that may arrive as a number (`published`).
pub(crate) mod opt_string_or_number {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        match Option::<Scalar>::deserialize(deserializer)?.map(Scalar::into_value) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ (Value::String(_) | Value::Number(_))) => Ok(scalar_to_string(&v)),
            Some(other) => Err(D::Error::custom(format!(
                "expected a string or a number, found {}",
                describe(&other)
            ))),
        }
    }
}

fn value_to_f64(value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("number {n} is out of range")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{s}` is not a number")),
        other => Err(format!("expected a number, found {}", describe(other))),
    }
}

/// Writes a float the way Go's encoders do: integral values without a fractional part.
fn serialize_float<S: Serializer>(value: f64, s: S) -> Result<S::Ok, S::Error> {
    // 2^53: every integer below it is exactly representable, so the cast is lossless.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() < EXACT {
        s.serialize_i64(value as i64)
    } else {
        s.serialize_f64(value)
    }
}

/// Optional float that may arrive as a numeric string (`cpus`, `max_failure_ratio`).
pub(crate) mod opt_float {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serialize_float(*v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        match Option::<Scalar>::deserialize(deserializer)?.map(Scalar::into_value) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => value_to_f64(&v).map(Some).map_err(D::Error::custom),
        }
    }
}

fn value_to_i64(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("expected an integer, found {n}")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("`{s}` is not an integer")),
        other => Err(format!("expected an integer, found {}", describe(other))),
    }
}

/// Parses a byte size the way docker's `RAMInBytes` does: binary multiples, optional `b`/`ib`.
pub fn parse_byte_size(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => return None,
    };
    let bytes = number * multiplier;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return None;
    }
    Some(bytes as i64)
}

fn value_to_bytes(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(_) => value_to_i64(value),
        // Plain decimal first: this is also how negative sentinels (`-1`, unlimited swap) read.
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| parse_byte_size(s))
            .ok_or_else(|| format!("`{s}` is not a byte size")),
        other => Err(format!("expected a byte size, found {}", describe(other))),
    }
}

/// Byte size (`memory`, `shm_size`…): integer bytes out, integer or `"512m"` in.
pub(crate) mod bytes {
    use super::*;

    /// compose-go prints byte sizes as decimal strings (`"536870912"`); so do we.
    pub fn serialize<S: Serializer>(value: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        value_to_bytes(&Scalar::deserialize(deserializer)?.into_value()).map_err(D::Error::custom)
    }
}

/// Optional byte size.
pub(crate) mod opt_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::bytes::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        match Option::<Scalar>::deserialize(deserializer)?.map(Scalar::into_value) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => value_to_bytes(&v).map(Some).map_err(D::Error::custom),
        }
    }
}

/// Integer that may arrive as a numeric string.
pub(crate) mod int {
    use super::*;

    /// compose-go prints byte sizes as decimal strings (`"536870912"`); so do we.
    pub fn serialize<S: Serializer>(value: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        value_to_i64(&Scalar::deserialize(deserializer)?.into_value()).map_err(D::Error::custom)
    }
}

/// Optional integer that may arrive as a numeric string.
pub(crate) mod opt_int {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        match Option::<Scalar>::deserialize(deserializer)?.map(Scalar::into_value) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => value_to_i64(&v).map(Some).map_err(D::Error::custom),
        }
    }
}

/// File mode: a number out (as the brief's long form), a number or an octal string in.
pub(crate) mod opt_mode {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u32>, D::Error> {
        match Option::<Scalar>::deserialize(deserializer)?.map(Scalar::into_value) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("invalid file mode {n}"))),
            // A string mode is always octal, as in `mode: "0440"`.
            Some(Value::String(s)) => u32::from_str_radix(s.trim(), 8)
                .map(Some)
                .map_err(|_| D::Error::custom(format!("`{s}` is not an octal file mode"))),
            Some(other) => Err(D::Error::custom(format!(
                "expected a file mode, found {}",
                describe(&other)
            ))),
        }
    }
}

/// Device count: an integer, where `-1` stands for `all`.
pub(crate) mod opt_device_count {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        match Option::<Scalar>::deserialize(deserializer)?.map(Scalar::into_value) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("all") => Ok(Some(-1)),
            Some(v) => value_to_i64(&v).map(Some).map_err(|_| {
                D::Error::custom("device count must be an integer or `all`".to_string())
            }),
        }
    }
}

/// `external`: a boolean; the deprecated `{name: …}` form counts as `true`.
pub(crate) mod external {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        match Option::<Scalar>::deserialize(deserializer)?.map(Scalar::into_value) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::Object(_)) => Ok(true),
            Some(Value::String(s)) => match s.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(D::Error::custom(format!("`{s}` is not a boolean"))),
            },
            Some(other) => Err(D::Error::custom(format!(
                "`external` must be a boolean, found {}",
                describe(&other)
            ))),
        }
    }
}

/// Map whose values may be `null` in the file, meaning "all defaults" (top-level networks/volumes).
pub(crate) mod map_null_as_default {
    use super::*;

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<IndexMap<String, T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        // Straight into one map sized up front: services are large, and building a map of
        // options to convert into a second map would move each of them twice more.
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default> serde::de::Visitor<'de> for V<T> {
            type Value = IndexMap<String, T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(IndexMap::new())
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(IndexMap::new())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<String, Option<T>>()? {
                    out.insert(k, v.unwrap_or_default());
                }
                Ok(out)
            }
        }
        deserializer.deserialize_option(V(std::marker::PhantomData))
    }
}
