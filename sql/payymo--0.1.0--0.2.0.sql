/* payymo--0.1.0--0.2.0.sql */

\echo Use "ALTER EXTENSION payymo UPDATE TO '0.2.0'" to load this file. \quit
