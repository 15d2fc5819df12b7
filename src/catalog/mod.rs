//! Resolution against the live database: which tables exist, their columns, types,
//! nullability and primary keys. This is the only place the planner's inputs touch the outside
//! world; the resulting [`Catalog`] is plain data, so planning stays a pure function and golden
//! tests can use a catalog written by hand ([`Catalog::from_ddl_like`]).
//!
//! Column types are resolved here: domains to their base type (the domain's typmod when the
//! column has none), arrays to their element type, enums with their labels in `enumsortorder`
//! (Debezium 3.6's `allowed` order), and the extension types cdcql maps (hstore, ltree, citext,
//! PostGIS geometry/geography, pgvector vector/halfvec/sparsevec) by name, since their OIDs
//! differ per database. A type without a binary send function cannot
//! be read by binary COPY or binary pgoutput, so it is unsupported whatever its name.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::types::{PgType, Support};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot connect to Postgres at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("reading the Postgres catalog failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("bad catalog fixture line {line}: {message}")]
    Fixture { line: usize, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// `schema.table`, each part quoted only when Postgres needs it.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Quote an identifier for Postgres unless it is a plain lower-case name.
pub fn quote_ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub pg_type: PgType,
    pub nullable: bool,
    /// `pg_attribute.atttypid`, to notice a type change in the replication stream; 0 when
    /// unknown (hand-written catalogs).
    pub type_oid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: TableName,
    /// In table (attnum) order, dropped columns excluded.
    pub columns: Vec<Column>,
    /// Primary-key column names in constraint order (Debezium's key field order).
    pub primary_key: Vec<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Everything the planner needs to know about one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub database: String,
    pub tables: BTreeMap<TableName, Table>,
}

const COLUMNS_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, a.attname::text, a.atttypid::oid, a.atttypmod,
       a.attnotnull, format_type(a.atttypid, a.atttypmod)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
 WHERE c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
 ORDER BY 1, 2, a.attnum";

/// Every type a user column uses, and recursively their element and base types.
const TYPES_SQL: &str = "\
WITH RECURSIVE used(oid) AS (
    SELECT DISTINCT a.atttypid
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
     WHERE c.relkind IN ('r', 'p')
       AND a.attnum > 0 AND NOT a.attisdropped
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION
    SELECT x.oid
      FROM used u
      JOIN pg_catalog.pg_type t ON t.oid = u.oid
      CROSS JOIN LATERAL (VALUES (t.typelem), (t.typbasetype)) AS x(oid)
     WHERE x.oid <> 0
)
SELECT t.oid, t.typname::text, t.typtype::text, t.typcategory::text, t.typelem, t.typbasetype,
       t.typtypmod, t.typsend::oid <> 0,
       (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
          FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)
  FROM used JOIN pg_catalog.pg_type t ON t.oid = used.oid";

/// The `pg_type` facts type resolution needs.
#[derive(Debug, Clone)]
struct TypeRow {
    name: String,
    typtype: String,
    category: String,
    elem: u32,
    base: u32,
    typmod: i32,
    has_send: bool,
    labels: Vec<String>,
}

/// Resolve a column's type (`atttypid`, `atttypmod`); `shown` is `format_type`'s text.
fn resolve_type(types: &HashMap<u32, TypeRow>, oid: u32, typmod: i32, shown: &str) -> PgType {
    resolve_depth(types, oid, typmod, shown, 0)
}

fn resolve_depth(
    types: &HashMap<u32, TypeRow>,
    oid: u32,
    typmod: i32,
    shown: &str,
    depth: u32,
) -> PgType {
    let row = types.get(&oid);
    let unsupported = || PgType::Unsupported {
        name: shown.to_string(),
        oid,
    };
    if depth > 32 {
        return unsupported();
    }
    if let Some(t) = row.filter(|t| t.typtype == "d") {
        // A domain's own typmod applies when the column has none (one level, as Debezium).
        let typmod = if typmod >= 0 { typmod } else { t.typmod };
        let base_name = types.get(&t.base).map_or(shown, |b| b.name.as_str());
        return resolve_depth(types, t.base, typmod, base_name, depth + 1);
    }
    if let Some(t) = row.filter(|t| !t.has_send) {
        // Binary COPY and binary pgoutput would fail on it (e.g. isn's isbn).
        return PgType::Unsupported {
            name: format!("{shown} (no binary send function)"),
            oid: if t.base != 0 { t.base } else { oid },
        };
    }
    let builtin = PgType::from_oid(oid, typmod, shown);
    if builtin.support() != Support::Unknown {
        return builtin;
    }
    let Some(t) = row else {
        return builtin;
    };
    if t.category == "A" && t.elem != 0 {
        let elem_name = types.get(&t.elem).map_or("?", |e| e.name.as_str());
        let elem = resolve_depth(types, t.elem, typmod, elem_name, depth + 1);
        return match elem {
            PgType::Array(_) => unsupported(),
            e => PgType::Array(Box::new(e)),
        };
    }
    if t.typtype == "e" {
        return PgType::Enum {
            name: t.name.clone(),
            labels: t.labels.clone(),
        };
    }
    if t.typtype == "b" {
        if let Some(ext) = PgType::from_extension_name(&t.name) {
            return ext;
        }
    }
    unsupported()
}

const PRIMARY_KEYS_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, a.attname::text
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
 WHERE i.indisprimary
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1, 2, k.ord";

impl Catalog {
    /// Read every user table of the database the client is connected to.
    pub async fn load(client: &tokio_postgres::Client) -> Result<Catalog, CatalogError> {
        let database: String = client
            .query_one("SELECT current_database()::text", &[])
            .await?
            .get(0);
        let mut types: HashMap<u32, TypeRow> = HashMap::new();
        for row in client.query(TYPES_SQL, &[]).await? {
            types.insert(
                row.get(0),
                TypeRow {
                    name: row.get(1),
                    typtype: row.get(2),
                    category: row.get(3),
                    elem: row.get(4),
                    base: row.get(5),
                    typmod: row.get(6),
                    has_send: row.get(7),
                    labels: row.get::<_, Option<Vec<String>>>(8).unwrap_or_default(),
                },
            );
        }
        let mut tables: BTreeMap<TableName, Table> = BTreeMap::new();
        for row in client.query(COLUMNS_SQL, &[]).await? {
            let name = TableName::new(row.get::<_, String>(0), row.get::<_, String>(1));
            let type_oid: u32 = row.get(3);
            let typmod: i32 = row.get(4);
            let not_null: bool = row.get(5);
            let type_name: String = row.get(6);
            let column = Column {
                name: row.get(2),
                pg_type: resolve_type(&types, type_oid, typmod, &type_name),
                nullable: !not_null,
                type_oid,
            };
            tables
                .entry(name.clone())
                .or_insert_with(|| Table {
                    name,
                    columns: Vec::new(),
                    primary_key: Vec::new(),
                })
                .columns
                .push(column);
        }
        for row in client.query(PRIMARY_KEYS_SQL, &[]).await? {
            let name = TableName::new(row.get::<_, String>(0), row.get::<_, String>(1));
            if let Some(t) = tables.get_mut(&name) {
                t.primary_key.push(row.get(2));
            }
        }
        Ok(Catalog { database, tables })
    }

    pub fn table(&self, name: &TableName) -> Option<&Table> {
        self.tables.get(name)
    }

    /// A catalog written by hand, for golden tests and examples:
    ///
    /// ```text
    /// database shop
    /// table public.orders
    ///   id integer not null primary key
    ///   amount numeric(10,2)
    /// ```
    /// Types use the names [`PgType`]'s `Display` prints (`integer`, `numeric(10,2)`,
    /// `timestamp(6) with time zone`, `integer[]`, `enum mood('sad','ok')`, `hstore`, ...);
    /// a domain is written as its base type, and `unsupported NAME` stands for a type cdcql
    /// cannot map.
    pub fn from_ddl_like(text: &str) -> Result<Catalog, CatalogError> {
        let mut cat = Catalog::default();
        let mut current: Option<TableName> = None;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: String| CatalogError::Fixture {
                line: line_no,
                message,
            };
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(db) = trimmed.strip_prefix("database ") {
                cat.database = db.trim().to_string();
            } else if let Some(t) = trimmed.strip_prefix("table ") {
                let (schema, name) = t
                    .trim()
                    .split_once('.')
                    .ok_or_else(|| err("expected table schema.name".into()))?;
                let tn = TableName::new(schema, name);
                cat.tables.insert(
                    tn.clone(),
                    Table {
                        name: tn.clone(),
                        columns: vec![],
                        primary_key: vec![],
                    },
                );
                current = Some(tn);
            } else {
                let tn = current
                    .as_ref()
                    .ok_or_else(|| err("column before any table".into()))?;
                let (name, rest) = trimmed
                    .split_once(' ')
                    .ok_or_else(|| err("expected `name type`".into()))?;
                let mut rest = rest.trim().to_string();
                let mut pk = false;
                let mut nullable = true;
                if let Some(r) = rest.strip_suffix(" primary key") {
                    pk = true;
                    nullable = false;
                    rest = r.to_string();
                }
                if let Some(r) = rest.strip_suffix(" not null") {
                    nullable = false;
                    rest = r.to_string();
                }
                let pg_type = PgType::from_display_name(&rest)
                    .ok_or_else(|| err(format!("unknown type `{rest}`")))?;
                let table = cat.tables.get_mut(tn).expect("table inserted above");
                table.columns.push(Column {
                    name: name.to_string(),
                    pg_type,
                    nullable,
                    type_oid: 0,
                });
                if pk {
                    table.primary_key.push(name.to_string());
                }
            }
        }
        Ok(cat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_catalog_parses_and_round_trips_type_names() {
        let cat = Catalog::from_ddl_like(
            "database shop\ntable public.orders\n  id integer primary key\n  amount numeric(10,2)\n  at timestamp(3) with time zone not null\n",
        )
        .unwrap();
        let t = cat.table(&TableName::new("public", "orders")).unwrap();
        assert_eq!(t.primary_key, vec!["id"]);
        assert_eq!(t.columns[1].pg_type, PgType::Numeric(Some((10, 2))));
        assert!(!t.columns[2].nullable);
        for c in &t.columns {
            assert_eq!(
                PgType::from_display_name(&c.pg_type.to_string()),
                Some(c.pg_type.clone())
            );
        }
    }

    fn row(
        name: &str,
        typtype: &str,
        category: &str,
        elem: u32,
        base: u32,
        typmod: i32,
    ) -> TypeRow {
        TypeRow {
            name: name.into(),
            typtype: typtype.into(),
            category: category.into(),
            elem,
            base,
            typmod,
            has_send: true,
            labels: vec![],
        }
    }

    #[test]
    fn resolves_domains_arrays_enums_and_extensions() {
        use crate::types::oid;
        let numeric_10_2 = ((10 << 16) | 2) + 4;
        let mut types = HashMap::new();
        types.insert(oid::NUMERIC, row("numeric", "b", "N", 0, 0, -1));
        types.insert(1231, row("_numeric", "b", "A", oid::NUMERIC, 0, -1));
        types.insert(
            90_001,
            row("price", "d", "N", 0, oid::NUMERIC, numeric_10_2),
        );
        types.insert(90_002, row("price2", "d", "N", 0, 90_001, -1));
        types.insert(90_003, row("_price", "b", "A", 90_001, 0, -1));
        let mut mood = row("mood", "e", "E", 0, 0, -1);
        mood.labels = vec!["sad".into(), "ok".into()];
        types.insert(90_004, mood.clone());
        types.insert(90_005, row("_mood", "b", "A", 90_004, 0, -1));
        types.insert(90_006, row("hstore", "b", "U", 0, 0, -1));
        let mut isbn = row("isbn", "b", "U", 0, 0, -1);
        isbn.has_send = false;
        types.insert(90_007, isbn);
        types.insert(90_008, row("box", "b", "G", oid::POINT, 0, -1));

        let r = |oid, typmod| resolve_type(&types, oid, typmod, "shown");
        assert_eq!(r(90_001, -1), PgType::Numeric(Some((10, 2))));
        // The column's own typmod wins over the domain's.
        assert_eq!(r(90_001, (5 << 16) + 4), PgType::Numeric(Some((5, 0))));
        assert_eq!(r(90_002, -1), PgType::Numeric(Some((10, 2))));
        assert_eq!(
            r(90_003, -1),
            PgType::Array(Box::new(PgType::Numeric(Some((10, 2)))))
        );
        assert_eq!(
            r(1231, numeric_10_2),
            PgType::Array(Box::new(PgType::Numeric(Some((10, 2)))))
        );
        let want_mood = PgType::Enum {
            name: "mood".into(),
            labels: vec!["sad".into(), "ok".into()],
        };
        assert_eq!(r(90_004, -1), want_mood);
        assert_eq!(r(90_005, -1), PgType::Array(Box::new(want_mood)));
        assert_eq!(r(90_006, -1), PgType::Hstore);
        assert!(
            matches!(r(90_007, -1), PgType::Unsupported { name, .. } if name.contains("binary send"))
        );
        // box has an element type (point) but is not an array.
        assert!(matches!(r(90_008, -1), PgType::Unsupported { .. }));
        assert!(matches!(r(123_456, -1), PgType::Unsupported { .. }));
    }

    #[test]
    fn quote_ident_quotes_only_when_needed() {
        assert_eq!(quote_ident("orders"), "orders");
        assert_eq!(quote_ident("Orders"), "\"Orders\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
