"""Reports: takes a store, gives the numbers of one space's report (`numbers.build_report`) and the
self-contained HTML page with its figures (`page.write_report`)."""
