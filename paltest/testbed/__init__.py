"""The testbed machinery around the optimizers, one module per concept.

Data flows one way: :mod:`~paltest.testbed.runner` runs one optimizer on one problem and
writes a :mod:`~paltest.testbed.results` record (its configuration from
:mod:`~paltest.testbed.runconfig`), which :mod:`~paltest.testbed.tables` gathers into
parquet tables (columns typed by :mod:`~paltest.testbed.table_columns`);
:mod:`~paltest.testbed.sweep` runs grids of them in parallel;
:mod:`~paltest.testbed.protocols` states the figure protocols as data and
:mod:`~paltest.testbed.experiments` runs them, choosing hyperparameters with
:mod:`~paltest.testbed.selection` on the scores of :mod:`~paltest.testbed.metrics`;
:mod:`~paltest.testbed.claims` evaluates the paper's statements on the results (pure; each
statistic with a bootstrap interval from :mod:`~paltest.testbed.uncertainty`, each claim a
:mod:`~paltest.testbed.claim_records` record) and :mod:`~paltest.testbed.figures` draws
them (matplotlib imported lazily; the selection plots in
:mod:`~paltest.testbed.selection_plots`).
:mod:`~paltest.testbed.lines` samples the batch loss along an optimizer's lines during a
run (an observer; shapes in :mod:`~paltest.testbed.line_shapes`, per-line statistics in
:mod:`~paltest.testbed.line_stats`), and
:mod:`~paltest.testbed.line_figures` runs Figures 1, 2, 6 and 7 on it (claims in
:mod:`~paltest.testbed.line_claims`, plots in :mod:`~paltest.testbed.line_plots`).

The most used names are re-exported at the top level (``paltest.run``, ``paltest.sweep``,
``paltest.load_table``, ...).
"""
