use super::*;

fn texts(sql: &str) -> Vec<String> {
    let s = Script::lex(sql);
    s.statement_texts().into_iter().map(str::to_string).collect()
}

#[test]
fn semicolons_inside_quotes_comments_and_bodies_do_not_split() {
    let sql = "-- a; comment\ncreate table t (x text default 'a;b');\n/* x; /* nested; */ y; */\n\
               create function f() returns int language sql as $$ select 1; $$;\n\
               create function g() returns int language plpgsql as $body$ begin return 1; end $body$;\n\
               select E'it\\'s;';  select \"odd;name\" from t";
    let parts = texts(sql);
    assert_eq!(parts.len(), 5, "{parts:#?}");
    assert!(parts[0].starts_with("create table t"));
    assert!(parts[4].ends_with("from t"));
}

#[test]
fn statements_know_their_lines() {
    let s = Script::lex("-- header\n\ncreate table a (\n  id int\n);\n/* note */ drop table b;\n");
    assert_eq!((s.statements[0].line, s.statements[0].end_line), (3, 5));
    assert_eq!(s.tight(&s.statements[0]), "create table a (\n  id int\n)");
    assert_eq!((s.statements[1].line, s.code(&s.statements[1])), (6, "drop table b"));
    let s = Script::lex("select 1 -- trailing");
    assert_eq!(s.tight(&s.statements[0]), "select 1");
}

#[test]
fn begin_atomic_bodies_are_one_statement_and_not_transaction_control() {
    let sql = "create function public.add(a int, b int) returns int language sql\nbegin atomic\n  select a + b;\n  select case when a > 0 then 1 else 2 end;\nend;\ncreate table t (id int);\n";
    let s = Script::lex(sql);
    assert_eq!(s.statements.len(), 2, "{:#?}", s.statement_texts());
    assert_eq!(s.first_non_transactional(), None);
    assert_eq!(s.statements[1].line, 6);
}

#[test]
fn statements_that_cannot_run_in_a_transaction() {
    let why = |sql: &str| Script::lex(sql).first_non_transactional().map(|(w, _)| w);
    assert_eq!(
        why("create table a(x int);\n-- note\ncreate unique index concurrently i on a(x);"),
        Some("CREATE INDEX CONCURRENTLY")
    );
    assert_eq!(why("vacuum analyze a;"), Some("VACUUM"));
    assert_eq!(why("create index i on a(x); select 'vacuum';"), None);
    assert_eq!(why("begin; create table b(); commit;"), Some("its own transaction control (BEGIN/COMMIT)"));
    assert_eq!(why("\u{feff}create index concurrently i on a (x);"), Some("CREATE INDEX CONCURRENTLY"));
}

#[test]
fn meta_commands_are_found_outside_quotes_and_comments_only() {
    let s = Script::lex(
        "select 1;\n\\! touch /tmp/x\nselect '\\q'; -- \\q\n/* \\i x */ select E'\\\\';\n\\set ON_ERROR_STOP off\n",
    );
    assert_eq!(s.meta_commands, vec![(2, "\\! touch /tmp/x".to_string()), (5, "\\set ON_ERROR_STOP off".to_string())]);
}

#[test]
fn plain_code_has_no_comments() {
    let s = Script::lex("-- lead\nalter table /* x */ t -- y\n enable row level security;\n");
    assert_eq!(s.plain(&s.statements[0]), "alter table   t  \n enable row level security");
}

#[test]
fn a_byte_order_mark_is_removed() {
    let s = Script::lex("\u{feff}create table t (id int);\n");
    assert!(s.bom);
    assert_eq!(s.statements[0].words[..2], ["CREATE".to_string(), "TABLE".to_string()]);
}

#[test]
fn a_large_file_lexes_whole() {
    // 4 MB of statements (the bench times 50 MB: the lexer is linear).
    let sql = "create table if not exists t (id int); -- note\n".repeat(90_000);
    let s = Script::lex(&sql);
    assert_eq!(s.statements.len(), 90_000);
    assert_eq!(s.statements[89_999].line, 90_000);
}

#[test]
fn psql_drops_empty_lines_outside_quotes_and_comments() {
    let text = "create table a (id int);\n\n\nselect\n  $$one\n\ntwo$$,\n  '\n', /*\n\n*/ 1;\n";
    let script = Script::lex(text);
    let dropped: Vec<bool> =
        text.split('\n').zip(script.quoted_line_starts()).map(|(line, quoted)| line.is_empty() && !quoted).collect();
    // Lines 2 and 3 are empty outside any quote; 6 is inside the dollar quote, 10 inside the
    // comment; the last element is the empty text after the final line break.
    assert_eq!(dropped, vec![false, true, true, false, false, false, false, false, false, false, false, true]);
}

#[test]
fn a_quote_or_comment_never_closed_is_named_by_its_line() {
    assert_eq!(Script::lex("create table a (id int);\n/* forgot to close\n").unterminated, Some(2));
    assert_eq!(Script::lex("select 'abc;\n").unterminated, Some(1));
    assert_eq!(Script::lex("select 1;\n\nselect $x$ body\n").unterminated, Some(3));
    assert_eq!(Script::lex("select 'a' /* b */, $$c$$, \"d\";\n").unterminated, None);
    assert_eq!(Script::lex("/* outer /* inner */ still */ select 1;").unterminated, None);
}

/// Cases where psql 15's scanner (`psqlscan.l`) ends statements elsewhere than a looser lexer
/// would; each was a way for the chain to put its text inside a literal.
#[test]
fn boundaries_are_psqls() {
    // A dollar tag of any bytes from 0x80 (psql's alphabet), digits after the first only.
    assert_eq!(texts("select $★$a;b$★$; select 2;"), ["select $★$a;b$★$", "select 2"]);
    assert_eq!(texts("select $é1$;$é1$;"), ["select $é1$;$é1$"]);
    assert_eq!(texts("select $1a$;"), ["select $1a$"]);
    // After a number or a parameter a `$` starts a token: `1$a$` is 1 and a dollar quote.
    assert_eq!(texts("select 1$a$;$a$;"), ["select 1$a$;$a$"]);
    assert_eq!(texts("select $1$a$;$a$;"), ["select $1$a$;$a$"]);
    // Inside an identifier (or a number's trailing junk) a `$` is a letter.
    assert_eq!(texts("select a$b$c; select $b$;$b$;"), ["select a$b$c", "select $b$;$b$"]);
    assert_eq!(texts("select 1a$b$; select 2;"), ["select 1a$b$", "select 2"]);
    // An `E` prefix counts only where a token starts.
    assert_eq!(texts("select 1e'\\'; select 2;"), ["select 1e'\\'", "select 2"]);
    assert_eq!(texts("select 1.e'\\'; select 2;"), ["select 1.e'\\'", "select 2"]);
    assert_eq!(texts("select e'\\'; select 2;';"), ["select e'\\'; select 2;'"]);
    assert_eq!(texts("select U&'\\'; select 2;"), ["select U&'\\'", "select 2"]);
    assert_eq!(texts("select b'1''; select 2;';"), ["select b'1''; select 2;'"]);
    // A string continued on the next line is a new string for psql (it reads line by line);
    // across a carriage return inside a line it is the same one.
    assert_eq!(texts("select e'a'\n'\\'; select 2;"), ["select e'a'\n'\\'", "select 2"]);
    assert_eq!(texts("select e'a'\r'\\'; select 2;';"), ["select e'a'\r'\\'; select 2;'"]);
    // A `--` comment ends at a carriage return.
    assert_eq!(texts("select 1 -- note\rselect; select 2;"), ["select 1 -- note\rselect", "select 2"]);
    // `)` never takes the depth below zero.
    assert_eq!(texts("select 1); select 2;"), ["select 1)", "select 2"]);
    // `:'name'` is psql's token, `::` a cast.
    assert_eq!(texts("select 1::text; select 2;"), ["select 1::text", "select 2"]);
}

#[test]
fn standard_conforming_strings_off_takes_backslashes_in_plain_quotes() {
    let s = Script::lex_with("select 'a\\'; select 2;'; select 3;", false);
    assert_eq!(s.statement_texts(), ["select 'a\\'; select 2;'", "select 3"]);
}

#[test]
fn begin_atomic_counts_only_psqls_identifiers() {
    // `E'x'` and a quoted identifier are not identifiers: CREATE FUNCTION stays the first two.
    let sql = "create function f() returns int language sql begin atomic select 1; end; select 2;";
    assert_eq!(texts(sql).len(), 2);
    let sql = "create or replace procedure p() language sql begin atomic select 1; end; select 2;";
    assert_eq!(texts(sql).len(), 2);
}

#[test]
fn psql_variables_are_found_outside_quotes() {
    let s = Script::lex("select :DBNAME, ':ERROR', :'USER', :\"HOST\", :{?x}, :mine, 1::int, a[1:2];");
    let refs: Vec<&str> = s.variables.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(refs, [":DBNAME", ":'USER'", ":\"HOST\"", ":{?x}", ":mine", ":2"]);
    assert_eq!(s.psql_variable().map(|(_, v)| v.as_str()), Some(":DBNAME"));
    assert_eq!(Script::lex("select :mine, a[1:n];").psql_variable(), None);
}

#[test]
fn every_terminator_is_known_empty_statements_too() {
    let s = Script::lex("select 1;; ;\nselect 2");
    assert_eq!(s.terminators, [8, 9, 11]);
    assert_eq!(s.statements.len(), 2);
}

#[test]
fn copy_data_is_not_sql() {
    let sql = "copy public.t (v) from stdin;\na;'b\n\\\\x\n\\.\nselect 1;\n";
    let s = Script::lex(sql);
    assert_eq!(s.statement_texts(), ["copy public.t (v) from stdin", "select 1"]);
    assert!(s.meta_commands.is_empty(), "{:?}", s.meta_commands);
    assert_eq!(s.statements[1].line, 5);
    assert!(s.needs_psql_f().is_some());
    assert_eq!(Script::lex("copy t to stdout;").needs_psql_f(), None);
}
