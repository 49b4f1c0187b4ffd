-- registration.sql: loading the extension adds exactly the module `mmap` and
-- exactly the functions mmap_unlink, mmap_flush, mmap_info and mmap_check
-- (one argument each), and removes nothing.
--
-- Conventions (run by tests/sqlrun.c): a statement that returns rows returns
-- (label, ok) rows and every ok must be 1.  The runner fills
-- temp.sqlrun_base_functions(name, narg) and temp.sqlrun_base_modules(name)
-- from the connection before it loads the extension.

SELECT 'the runner recorded the bare connection', (SELECT count(*) FROM temp.sqlrun_base_functions) > 50
  AND (SELECT count(*) FROM temp.sqlrun_base_modules) > 0;
SELECT 'the bare connection had no mmap module or function',
  NOT EXISTS (SELECT 1 FROM temp.sqlrun_base_modules WHERE name LIKE 'mmap%')
  AND NOT EXISTS (SELECT 1 FROM temp.sqlrun_base_functions WHERE name LIKE 'mmap%');
SELECT 'exactly the module mmap is added',
  (SELECT group_concat(name) FROM (SELECT name FROM pragma_module_list EXCEPT SELECT name FROM temp.sqlrun_base_modules ORDER BY name)) IS 'mmap';
SELECT 'no module is removed', NOT EXISTS (SELECT name FROM temp.sqlrun_base_modules EXCEPT SELECT name FROM pragma_module_list);
SELECT 'exactly the four functions are added',
  (SELECT group_concat(name) FROM (SELECT name FROM pragma_function_list EXCEPT SELECT name FROM temp.sqlrun_base_functions ORDER BY name))
  IS 'mmap_check,mmap_flush,mmap_info,mmap_unlink';
SELECT 'no function is removed or changed in arity',
  NOT EXISTS (SELECT name, narg FROM temp.sqlrun_base_functions EXCEPT SELECT name, narg FROM pragma_function_list);
SELECT 'no existing function gains an arity',
  NOT EXISTS (SELECT name, narg FROM pragma_function_list WHERE name IN (SELECT name FROM temp.sqlrun_base_functions)
              EXCEPT SELECT name, narg FROM temp.sqlrun_base_functions);
SELECT 'each new function takes exactly one argument',
  (SELECT group_concat(x) FROM (SELECT DISTINCT name || '/' || narg AS x FROM pragma_function_list WHERE name LIKE 'mmap%' ORDER BY 1))
  = 'mmap_check/1,mmap_flush/1,mmap_info/1,mmap_unlink/1';
SELECT 'the new functions are scalar functions',
  NOT EXISTS (SELECT 1 FROM pragma_function_list WHERE name LIKE 'mmap%' AND type <> 's');
SELECT 'mmap is usable as a module', 1;
CREATE VIRTUAL TABLE m USING mmap(name='$NAME', size='64K');
SELECT 'a table of the module works', (SELECT count(*) FROM m) = 0;
-- error: wrong number of arguments to function mmap_info()
SELECT mmap_info();
-- error: wrong number of arguments to function mmap_unlink()
SELECT mmap_unlink('a', 'b');
