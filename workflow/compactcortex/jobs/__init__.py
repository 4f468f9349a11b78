"""One job function per rule, named after its rule, in the module named after its rule file
(``workflow/rules/<stage>.smk`` -> ``jobs/<stage>.py``): read the inputs through ``io``, call the stage's logic, write
the outputs through ``io`` (atomically). The rules' scripts (``workflow/scripts/<rule>.py``) only call these."""
