/* A file header.
   /* Block comments nest, as in PostgreSQL. */
   CREATE CONNECTION commented_out TO KAFKA; -- still inside the comment
*/
CREATE /* a */ CONNECTION -- b
  pg /* c */ TO -- d
  POSTGRES /* e */ ( -- f
    url /* g */ = -- h
    'postgres://localhost/db' /* i */ -- j
  ) /* k */ ; -- l

--CREATE CONNECTION nope TO KAFKA;
CREATE PIPELINE p /* name */ FROM pg /* from */ INTO pg -- into
  TOPIC /* topic */ 't' KEY /* key */ ( /* a */ id /* b */ , -- c
  other ) FORMAT /* f */ JSON ENVELOPE /* e */ NATIVE WITH ( -- with
  partitions /* p */ = /* = */ 1 )
AS /* before the query */ SELECT id, -- the id; with a ; in a comment
       /* a ; in /* a nested */ comment */ other
  FROM public.t -- a trailing comment is not part of the query
  /* neither is this one */ ;
CREATE PIPELINE q FROM pg INTO pg TOPIC 'q' FORMAT JSON ENVELOPE NATIVE
  TABLES ( -- list
    public.t /* one */ , -- two
    u )
  ; /* done */ -- really
