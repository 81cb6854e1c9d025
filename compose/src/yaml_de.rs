//! Deserialising the typed model straight from the located tree, consuming it.
//!
//! Going through `serde_json::Value` first would copy every string and hash every key into an
//! ordered map only to take them apart again; on a 500-service project that was a third of the
//! load time.

use serde::de::value::{Error, MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;

use crate::yaml::{plain_type, resolve_plain, Kind, Node, ScalarType, Style};

/// A deserializer over an owned node.
pub struct NodeDeserializer(pub Node);

impl<'de> IntoDeserializer<'de, Error> for NodeDeserializer {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for NodeDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.kind {
            Kind::Scalar(s, Style::Quoted) => visitor.visit_string(s),
            Kind::Scalar(s, Style::Plain) if plain_type(&s) == ScalarType::Str => {
                visitor.visit_string(s)
            }
            Kind::Scalar(s, Style::Plain) => match resolve_plain(&s) {
                Value::Null => visitor.visit_unit(),
                Value::Bool(b) => visitor.visit_bool(b),
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        visitor.visit_i64(i)
                    } else if let Some(u) = n.as_u64() {
                        visitor.visit_u64(u)
                    } else {
                        visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                    }
                }
                _ => visitor.visit_string(s),
            },
            Kind::Seq(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(NodeDeserializer));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Kind::Map(entries) => {
                let mut map = MapDeserializer::new(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.name, NodeDeserializer(v))),
                );
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.0.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0.kind {
            // A unit variant written as its name.
            Kind::Scalar(s, _) => visitor.visit_enum(s.into_deserializer()),
            // `{variant: content}`.
            Kind::Map(entries) => {
                let map = MapDeserializer::new(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.name, NodeDeserializer(v))),
                );
                visitor.visit_enum(de::value::MapAccessDeserializer::new(map))
            }
            Kind::Seq(_) => Err(de::Error::custom("expected an enum variant, found a list")),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, Source};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        name: String,
        port: u16,
        ratio: f64,
        on: bool,
        maybe: Option<String>,
        none: Option<String>,
        list: Vec<i64>,
        mode: Mode,
        any: Value,
    }

    #[test]
    fn deserializes_like_json() {
        let n = parse(&Source::new(
            "t.yaml",
            "name: '80'\nport: 80\nratio: 1\non: true\nmaybe: x\nnone: null\nlist: [1, 2]\nmode: fast\nany: {a: [1, '2', null]}\n",
        ))
        .unwrap();
        let s = Sample::deserialize(NodeDeserializer(n)).unwrap();
        assert_eq!(
            s,
            Sample {
                name: "80".into(),
                port: 80,
                ratio: 1.0,
                on: true,
                maybe: Some("x".into()),
                none: None,
                list: vec![1, 2],
                mode: Mode::Fast,
                any: serde_json::json!({"a": [1, "2", null]}),
            }
        );
        let n = parse(&Source::new("t.yaml", "mode: slow")).unwrap();
        #[derive(Deserialize)]
        struct M {
            mode: Mode,
        }
        assert_eq!(
            M::deserialize(NodeDeserializer(n)).unwrap().mode,
            Mode::Slow
        );
    }

    #[test]
    fn type_errors_are_reported() {
        let n = parse(&Source::new("t.yaml", "port: big\n")).unwrap();
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct P {
            port: u16,
        }
        assert!(P::deserialize(NodeDeserializer(n)).is_err());
    }
}
