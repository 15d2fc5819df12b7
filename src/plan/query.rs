//! One table's SELECT: shape checks on the sqlparser AST (so errors point at the exact
//! clause), then DataFusion's SQL planner and analyzer for types, then extraction of the
//! filter and projection that the runtime evaluates per batch.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column as DfColumn, TableReference};
use datafusion::datasource::empty::EmptyTable;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast as sql;
use datafusion::sql::sqlparser::ast::Spanned;
use datafusion::sql::sqlparser::tokenizer::{Location, Span as SqlSpan};

use super::{closest, OutputColumn, PlanError, TablePlan};
use crate::catalog::{Catalog, Column, Table, TableName};
use crate::parse::{CreatePipeline, ObjectName, SelectQuery, SourceFile, Span};
use crate::types::{Support, TypeOptions, UnknownTypes};

/// Map a sqlparser span (1-based line/column within the query text) to file bytes.
fn file_span(q: &SelectQuery, s: SqlSpan) -> Span {
    if s.start.line == 0 {
        return q.span;
    }
    let to_offset = |loc: Location| -> usize {
        let mut offset = 0;
        for (i, line) in q.sql.split_inclusive('\n').enumerate() {
            if i as u64 + 1 == loc.line {
                let col = (loc.column.saturating_sub(1)) as usize;
                return offset
                    + line
                        .char_indices()
                        .nth(col)
                        .map(|(b, _)| b)
                        .unwrap_or(line.len());
            }
            offset += line.len();
        }
        q.sql.len()
    };
    let start = q.span.start + to_offset(s.start);
    let end = (q.span.start + to_offset(s.end)).max(start + 1);
    Span::new(start, end.min(q.span.end.max(start + 1)))
}

fn unsupported(file: &SourceFile, q: &SelectQuery, span: SqlSpan, what: &str) -> PlanError {
    PlanError::new(
        file,
        format!("{what} is not supported in a pipeline query"),
        file_span(q, span),
        "not supported here",
    )
    .with_help(
        "a pipeline query works on one row at a time: projection, computed columns, \
         scalar functions, CAST, CASE and WHERE",
    )
}

pub(super) fn resolve_table<'c>(
    file: &SourceFile,
    catalog: &'c Catalog,
    name: &ObjectName,
) -> Result<&'c Table, PlanError> {
    let schema = name
        .schema
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_else(|| "public".to_string());
    lookup_table(
        file,
        catalog,
        &TableName::new(schema, &name.name.value),
        name.span,
    )
}

fn lookup_table<'c>(
    file: &SourceFile,
    catalog: &'c Catalog,
    tn: &TableName,
    span: Span,
) -> Result<&'c Table, PlanError> {
    if let Some(t) = catalog.table(tn) {
        return Ok(t);
    }
    let names: Vec<String> = catalog.tables.keys().map(|k| k.to_string()).collect();
    let mut err = PlanError::new(
        file,
        format!(
            "table {tn} does not exist in database `{}`",
            catalog.database
        ),
        span,
        "unknown table",
    );
    if let Some(s) = closest(&tn.to_string(), names.iter().map(|s| s.as_str())) {
        err = err.with_help(format!("did you mean `{s}`?"));
    } else if !tn.name.chars().all(|c| !c.is_ascii_uppercase()) {
        err = err.with_help(
            "unquoted names are folded to lower case; quote mixed-case names: \"MyTable\"",
        );
    }
    Err(err)
}

/// The columns a pipeline can read, with their types as read under the pipeline's type
/// options. Columns Debezium leaves out of its events (arrays of money, interval, bit varying,
/// xml, point, name) are left out with a warning; columns of types nobody maps are an error,
/// or left out with a warning under `unknown_types = 'skip'`. `explicit` means the query names
/// the columns: then leaving one out would change the query, so both are errors.
pub(super) fn check_types(
    file: &SourceFile,
    table: &TableName,
    columns: &[Column],
    span: Span,
    types: &TypeOptions,
    explicit: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Column>, PlanError> {
    let mut readable = Vec::with_capacity(columns.len());
    for c in columns {
        match c.pg_type.support() {
            Support::Supported => readable.push(Column {
                pg_type: c.pg_type.under(types),
                ..c.clone()
            }),
            Support::OmittedByDebezium if explicit => {
                return Err(PlanError::new(
                    file,
                    format!(
                        "column {}.{} has type {}, which Debezium leaves out of its events",
                        table, c.name, c.pg_type
                    ),
                    span,
                    "reads this column",
                )
                .with_help(format!(
                    "Debezium does not capture arrays of money, interval, bit varying, xml, \
                     point or name; leave `{}` out of the query",
                    c.name
                )))
            }
            Support::OmittedByDebezium => warnings.push(format!(
                "column {}.{} ({}) is left out, as Debezium does: it does not capture arrays \
                 of money, interval, bit varying, xml, point or name",
                table, c.name, c.pg_type
            )),
            Support::Unknown if !explicit && types.unknown_types == UnknownTypes::Skip => warnings
                .push(format!(
                    "column {}.{} has type {}, which cdcql cannot map: left out \
                     (unknown_types = 'skip')",
                    table, c.name, c.pg_type
                )),
            Support::Unknown => {
                let help = if explicit {
                    format!(
                        "leave `{}` out of the query (cdcql reads every value in Postgres' \
                         binary format and maps it the way Debezium does)",
                        c.name
                    )
                } else {
                    format!(
                        "list the columns you want in a SELECT without `{}`, or add \
                         unknown_types = 'skip' to the pipeline's WITH (...) to leave such \
                         columns out",
                        c.name
                    )
                };
                return Err(PlanError::new(
                    file,
                    format!(
                        "column {}.{} has type {}, which cdcql cannot map",
                        table, c.name, c.pg_type
                    ),
                    span,
                    "reads this column",
                )
                .with_help(help));
            }
        }
    }
    Ok(readable)
}

pub(super) fn arrow_schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| {
                Field::new(
                    &c.name,
                    c.pg_type.arrow_type().expect("checked by check_types"),
                    c.nullable,
                )
            })
            .collect::<Vec<_>>(),
    ))
}

fn ident_name(i: &sql::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The single source table of a query, with the span of its name.
fn source_table<'q>(
    file: &SourceFile,
    q: &'q SelectQuery,
    select: &'q sql::Select,
) -> Result<(TableName, Option<String>, Span), PlanError> {
    let whole = file_span(q, select.span());
    let [from] = select.from.as_slice() else {
        if select.from.is_empty() {
            return Err(
                PlanError::new(file, "the query reads no table", whole, "no FROM")
                    .with_help("add FROM schema.table"),
            );
        }
        return Err(unsupported(
            file,
            q,
            select.from[1].relation.span(),
            "reading several tables",
        ));
    };
    if let Some(j) = from.joins.first() {
        return Err(unsupported(file, q, j.relation.span(), "JOIN"));
    }
    let sql::TableFactor::Table {
        name, alias, args, ..
    } = &from.relation
    else {
        return Err(unsupported(
            file,
            q,
            from.relation.span(),
            "a subquery or table function",
        ));
    };
    if args.is_some() {
        return Err(unsupported(
            file,
            q,
            from.relation.span(),
            "a table function",
        ));
    }
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(ident_name))
        .collect();
    let span = file_span(q, name.span());
    let tn = match parts.as_slice() {
        [t] => TableName::new("public", t),
        [s, t] => TableName::new(s, t),
        [_db, s, t] => TableName::new(s, t),
        _ => {
            return Err(PlanError::new(
                file,
                "expected schema.table",
                span,
                "bad table name",
            ))
        }
    };
    Ok((tn, alias.as_ref().map(|a| ident_name(&a.name)), span))
}

/// Reject what a per-row change stream cannot evaluate, pointing at the clause.
fn check_shape<'q>(file: &SourceFile, q: &'q SelectQuery) -> Result<&'q sql::Select, PlanError> {
    let query = &q.query;
    if let Some(with) = &query.with {
        return Err(unsupported(
            file,
            q,
            with.span(),
            "WITH (common table expressions)",
        ));
    }
    if let Some(o) = &query.order_by {
        return Err(unsupported(file, q, o.span(), "ORDER BY")
            .with_help("a change stream is ordered by the source's commit order"));
    }
    if let Some(l) = &query.limit_clause {
        return Err(unsupported(file, q, l.span(), "LIMIT / OFFSET")
            .with_help("use `cdcql preview FILE PIPELINE --limit N` to look at a few rows"));
    }
    if let Some(f) = &query.fetch {
        return Err(unsupported(file, q, f.span(), "FETCH"));
    }
    let select = match query.body.as_ref() {
        sql::SetExpr::Select(s) => s.as_ref(),
        sql::SetExpr::SetOperation { .. } => {
            return Err(
                unsupported(file, q, query.body.span(), "UNION / INTERSECT / EXCEPT")
                    .with_help("write one SELECT per table: AS (SELECT ...), (SELECT ...)"),
            )
        }
        other => return Err(unsupported(file, q, other.span(), "this kind of query")),
    };
    if let Some(d) = &select.distinct {
        let _ = d;
        return Err(
            unsupported(file, q, select.select_token.0.span, "DISTINCT").with_help(
                "DISTINCT needs state across rows; a pipeline query works on one row at a time",
            ),
        );
    }
    match &select.group_by {
        sql::GroupByExpr::Expressions(exprs, _) if exprs.is_empty() => {}
        g => {
            return Err(unsupported(file, q, g.span(), "GROUP BY")
                .with_help("aggregates need state across rows; aggregate downstream of Kafka"))
        }
    }
    if let Some(h) = &select.having {
        return Err(unsupported(file, q, h.span(), "HAVING"));
    }
    if let Some(w) = select.named_window.first() {
        return Err(unsupported(file, q, w.span(), "WINDOW"));
    }
    if let Some(w) = &select.qualify {
        return Err(unsupported(file, q, w.span(), "QUALIFY"));
    }
    let mut bad: Option<(SqlSpan, &str)> = None;
    let _ = sql::visit_expressions(&select.projection, |e: &sql::Expr| {
        match e {
            sql::Expr::Subquery(_) | sql::Expr::Exists { .. } | sql::Expr::InSubquery { .. } => {
                bad = Some((e.span(), "a subquery"));
                return ControlFlow::Break(());
            }
            sql::Expr::Function(f) if f.over.is_some() => {
                bad = Some((e.span(), "a window function"));
                return ControlFlow::Break(());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    if let Some(sel) = &select.selection {
        let _ = sql::visit_expressions(sel, |e: &sql::Expr| {
            if matches!(
                e,
                sql::Expr::Subquery(_) | sql::Expr::Exists { .. } | sql::Expr::InSubquery { .. }
            ) {
                bad = Some((e.span(), "a subquery"));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
    }
    if let Some((span, what)) = bad {
        return Err(unsupported(file, q, span, what));
    }
    for item in &select.projection {
        if let sql::SelectItem::UnnamedExpr(e) = item {
            if !matches!(
                e,
                sql::Expr::Identifier(_) | sql::Expr::CompoundIdentifier(_)
            ) {
                return Err(PlanError::new(
                    file,
                    "a computed column needs a name",
                    file_span(q, e.span()),
                    "unnamed expression",
                )
                .with_help(format!("name it: {e} AS some_name")));
            }
        }
    }
    Ok(select)
}

/// Every column the query names must exist; report the first one that does not, with a
/// suggestion. Returns the names used, or `None` when `*` selects everything.
fn check_columns(
    file: &SourceFile,
    q: &SelectQuery,
    select: &sql::Select,
    table: &Table,
    alias: Option<&str>,
) -> Result<Option<HashSet<String>>, PlanError> {
    let mut used = HashSet::new();
    let mut wildcard = false;
    for item in &select.projection {
        if matches!(
            item,
            sql::SelectItem::Wildcard(_) | sql::SelectItem::QualifiedWildcard(..)
        ) {
            wildcard = true;
        }
    }
    let check =
        |e: &sql::Expr, used: &mut HashSet<String>| -> ControlFlow<(SqlSpan, String, String)> {
            let ident = match e {
                sql::Expr::Identifier(i) => i,
                sql::Expr::CompoundIdentifier(parts) => match parts.last() {
                    Some(i) => {
                        if parts.len() >= 2 {
                            let qual = ident_name(&parts[parts.len() - 2]);
                            if qual != table.name.name && Some(qual.as_str()) != alias {
                                return ControlFlow::Break((
                                    e.span(),
                                    format!("unknown table or alias `{qual}`"),
                                    format!(
                                        "the query reads {}; refer to its columns by name",
                                        table.name
                                    ),
                                ));
                            }
                        }
                        i
                    }
                    None => return ControlFlow::Continue(()),
                },
                _ => return ControlFlow::Continue(()),
            };
            let name = ident_name(ident);
            if table.column(&name).is_none() {
                let help = closest(&name, table.columns.iter().map(|c| c.name.as_str()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        format!(
                            "columns of {}: {}",
                            table.name,
                            table
                                .columns
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
                return ControlFlow::Break((
                    ident.span,
                    format!("column `{name}` does not exist in {}", table.name),
                    help,
                ));
            }
            used.insert(name);
            ControlFlow::Continue(())
        };
    let mut unknown = None;
    if let ControlFlow::Break(b) =
        sql::visit_expressions(&select.projection, |e| check(e, &mut used))
    {
        unknown = Some(b);
    }
    if unknown.is_none() {
        if let Some(sel) = &select.selection {
            if let ControlFlow::Break(b) = sql::visit_expressions(sel, |e| check(e, &mut used)) {
                unknown = Some(b);
            }
        }
    }
    if let Some((span, message, help)) = unknown {
        return Err(
            PlanError::new(file, message, file_span(q, span), "unknown column").with_help(help),
        );
    }
    Ok(if wildcard { None } else { Some(used) })
}

fn datafusion_message(e: &datafusion::error::DataFusionError) -> String {
    let s = e.to_string();
    let s = s
        .strip_prefix("Error during planning: ")
        .or_else(|| s.strip_prefix("Schema error: "))
        .or_else(|| s.strip_prefix("This feature is not implemented: "))
        .unwrap_or(&s);
    s.lines().next().unwrap_or("").to_string()
}

pub(super) fn plan_query(
    file: &SourceFile,
    p: &CreatePipeline,
    catalog: &Catalog,
    q: &SelectQuery,
    types: &TypeOptions,
    warnings: &mut Vec<String>,
) -> Result<TablePlan, PlanError> {
    let select = check_shape(file, q)?;
    let (tn, alias, table_span) = source_table(file, q, select)?;
    let table = lookup_table(file, catalog, &tn, table_span)?;
    let used = check_columns(file, q, select, table, alias.as_deref())?;
    let referenced: Vec<Column> = table
        .columns
        .iter()
        .filter(|c| used.as_ref().is_none_or(|u| u.contains(&c.name)))
        .cloned()
        .collect();
    check_types(
        file,
        &table.name,
        &referenced,
        q.span,
        types,
        used.is_some(),
        warnings,
    )?;

    // Register only the readable columns (as read under the type options): one the query
    // does not read must not stop planning, and `*` leaves it out.
    let visible: Vec<Column> = table
        .columns
        .iter()
        .filter(|c| c.pg_type.is_supported())
        .map(|c| Column {
            pg_type: c.pg_type.under(types),
            ..c.clone()
        })
        .collect();
    let config =
        SessionConfig::new().set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false);
    let ctx = SessionContext::new_with_config(config);
    let internal = |e: datafusion::error::DataFusionError| {
        PlanError::new(
            file,
            format!("this is a bug in cdcql, please report it: {e}"),
            q.span,
            "while planning this query",
        )
    };
    if tn.schema != "public" {
        ctx.catalog("datafusion")
            .expect("default catalog exists")
            .register_schema(&tn.schema, Arc::new(MemorySchemaProvider::new()))
            .map_err(internal)?;
    }
    ctx.register_table(
        TableReference::partial(tn.schema.as_str(), tn.name.as_str()),
        Arc::new(EmptyTable::new(arrow_schema(&visible))),
    )
    .map_err(internal)?;
    let statement = datafusion::sql::parser::Statement::Statement(Box::new(sql::Statement::Query(
        q.query.clone(),
    )));
    let state = ctx.state();
    // The table provider is in memory, so this future completes without I/O.
    let logical = futures::executor::block_on(state.statement_to_plan(statement))
        .and_then(|plan| {
            state
                .analyzer()
                .execute_and_check(plan, state.config_options(), |_, _| {})
        })
        .map_err(|e| {
            PlanError::new(file, datafusion_message(&e), q.span, "in this query")
                .with_help("check the function names and argument types")
        })?;

    let (projection, filter) = split_plan(&logical).map_err(|what| {
        PlanError::new(
            file,
            format!("{what} is not supported in a pipeline query"),
            q.span,
            "not supported here",
        )
        .with_help("a pipeline query works on one row at a time: no aggregates, windows or joins")
    })?;

    let out_schema = logical.schema();
    let mut output = Vec::new();
    let mut sources: Vec<Option<String>> = Vec::new();
    for (i, expr) in projection.iter().enumerate() {
        let field = out_schema.field(i);
        let source = match unalias(expr) {
            Expr::Column(c) => Some(c.name.clone()),
            _ => None,
        };
        let pg_type = match source
            .as_deref()
            .and_then(|s| visible.iter().find(|c| c.name == s))
        {
            Some(col) => col.pg_type.clone(),
            None => crate::types::PgType::from_arrow(field.data_type()).ok_or_else(|| {
                PlanError::new(
                    file,
                    format!(
                        "column `{}` has type {}, which cannot be written yet",
                        field.name(),
                        field.data_type()
                    ),
                    q.span,
                    "in this query",
                )
                .with_help(
                    "CAST it to text, bigint, numeric(p,s), timestamp or another supported type",
                )
            })?,
        };
        if output
            .iter()
            .any(|o: &OutputColumn| &o.name == field.name())
        {
            return Err(PlanError::new(
                file,
                format!("column name `{}` appears twice in the output", field.name()),
                q.span,
                "duplicate output name",
            )
            .with_help("give one of them another name with AS"));
        }
        output.push(OutputColumn {
            name: field.name().clone(),
            pg_type,
            nullable: field.is_nullable(),
        });
        sources.push(source);
    }

    let strip = |e: Expr| -> Expr {
        e.transform(|e| {
            Ok(match e {
                Expr::Column(c) => Transformed::yes(Expr::Column(DfColumn::from_name(c.name))),
                other => Transformed::no(other),
            })
        })
        .map(|t| t.data)
        .expect("infallible rewrite")
    };
    let filter = filter.map(strip);
    let projection: Vec<Expr> = projection.into_iter().map(strip).collect();
    let mut needed: HashSet<String> = HashSet::new();
    for e in projection.iter().chain(filter.iter()) {
        for c in e.column_refs() {
            needed.insert(c.name.clone());
        }
    }
    let read_columns: Vec<Column> = visible
        .iter()
        .filter(|c| needed.contains(&c.name))
        .cloned()
        .collect();
    let identity = filter.is_none()
        && read_columns.len() == projection.len()
        && projection
            .iter()
            .zip(&read_columns)
            .all(|(e, c)| matches!(e, Expr::Column(col) if col.name == c.name));
    let key = plan_key(file, p, table, &output, &sources, q.span, warnings)?;
    Ok(TablePlan {
        table: table.name.clone(),
        input_schema: arrow_schema(&read_columns),
        read_columns,
        logical_plan: Some(logical),
        filter,
        projection: if identity { None } else { Some(projection) },
        output,
        key,
        topic: String::new(),
    })
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

/// Projection(Filter?(SubqueryAlias?(TableScan))) → (projection, filter).
fn split_plan(plan: &LogicalPlan) -> Result<(Vec<Expr>, Option<Expr>), String> {
    let LogicalPlan::Projection(proj) = plan else {
        return Err(node_name(plan));
    };
    let mut filter = None;
    let mut node = proj.input.as_ref();
    loop {
        match node {
            LogicalPlan::Filter(f) => {
                if filter.is_some() {
                    return Err("a nested filter".into());
                }
                filter = Some(f.predicate.clone());
                node = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(a) => node = a.input.as_ref(),
            LogicalPlan::TableScan(_) => return Ok((proj.expr.clone(), filter)),
            other => return Err(node_name(other)),
        }
    }
}

fn node_name(plan: &LogicalPlan) -> String {
    match plan {
        LogicalPlan::Aggregate(_) => "an aggregate function".into(),
        LogicalPlan::Window(_) => "a window function".into(),
        LogicalPlan::Join(_) => "JOIN".into(),
        LogicalPlan::Sort(_) => "ORDER BY".into(),
        LogicalPlan::Limit(_) => "LIMIT".into(),
        LogicalPlan::Distinct(_) => "DISTINCT".into(),
        LogicalPlan::Unnest(_) => "UNNEST".into(),
        other => format!("a {} step", other.display()),
    }
}

/// Key columns: `KEY (...)` names output columns; otherwise the table's primary key, which
/// must survive the projection unchanged.
pub(super) fn plan_key(
    file: &SourceFile,
    p: &CreatePipeline,
    table: &Table,
    output: &[OutputColumn],
    sources: &[Option<String>],
    span: Span,
    warnings: &mut Vec<String>,
) -> Result<Vec<usize>, PlanError> {
    if let Some(key) = &p.key {
        let mut idx = Vec::new();
        for k in key {
            match output.iter().position(|o| o.name == k.value) {
                Some(i) => idx.push(i),
                None => {
                    let mut err = PlanError::new(
                        file,
                        format!(
                            "key column `{}` is not an output column of {}",
                            k.value, table.name
                        ),
                        k.span,
                        "not in the output",
                    );
                    err = match closest(&k.value, output.iter().map(|o| o.name.as_str())) {
                        Some(s) => err.with_help(format!("did you mean `{s}`?")),
                        None => err.with_help("KEY (...) names columns of the SELECT list"),
                    };
                    return Err(err);
                }
            }
        }
        return Ok(idx);
    }
    if table.primary_key.is_empty() {
        warnings.push(format!(
            "table {} has no primary key: its messages get a null key (add KEY (...) to choose one)",
            table.name
        ));
        return Ok(vec![]);
    }
    let mut idx = Vec::new();
    for pk in &table.primary_key {
        let found = if sources.is_empty() {
            output.iter().position(|o| &o.name == pk)
        } else {
            sources
                .iter()
                .position(|s| s.as_deref() == Some(pk.as_str()))
        };
        match found {
            Some(i) => idx.push(i),
            None => {
                return Err(PlanError::new(
                    file,
                    format!(
                        "primary key column `{pk}` of {} is not in the SELECT list",
                        table.name
                    ),
                    span,
                    "the key would be lost",
                )
                .with_help(format!(
                    "add `{pk}` to the SELECT list, or name the key columns with KEY (...)"
                )))
            }
        }
    }
    Ok(idx)
}
