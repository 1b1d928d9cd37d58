"""Export: the five training views in TRL formats, the content-addressed bundle with its manifest,\nand storage push/fetch through fsspec (file, s3, gs).\n"""
