"""Reports: results → results.json and a single-file report.html with plots, a manifest stamp,\nand the winner per role.\n"""
