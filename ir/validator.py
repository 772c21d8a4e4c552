def validate(m): pass
def operand_stacks(m, f): pass
