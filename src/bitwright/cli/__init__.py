"""The command line: the only code in bitwright that prints, prompts or exits."""
