"""First-fit-decreasing packing and the mask that keeps packed responses apart."""

from __future__ import annotations

import torch

from minimalrl.model.fast.packing import first_fit_decreasing, pack, packed_rows


def test_first_fit_decreasing_by_hand():
    # width 6: 6 alone; 5 + 1; 4 + 2; 3 then (nothing fits beside it but 0-length)
    row, start, rows = first_fit_decreasing([3, 6, 1, 4, 2, 5, 0])
    assert rows == 4
    assert [(row[b], start[b]) for b in range(7)] == [
        (3, 0), (0, 0), (1, 5), (2, 0), (2, 4), (1, 0), (0, 0),
    ]  # fmt: skip
    assert packed_rows([4, 4, 4]) == 3 and packed_rows([]) == 0


def test_mask_positions_and_predictors():
    # Prompt 0 has 2 tokens (left-padded to 3), prompt 1 has 3. Responses: b0 (prompt 0, 1 token),
    # b1 (prompt 1, 3 tokens), b2 (prompt 1, 2 tokens) -> rows [b1], [b2 + b0].
    prompt_mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    index = torch.tensor([0, 1, 1])
    ids = torch.tensor([[7, 0, 0], [4, 5, 6], [8, 9, 0]])
    mask = (ids > 0).long()
    p = pack(prompt_mask, index, ids, mask)
    assert p.input_ids_RW.tolist() == [[4, 5, 6], [8, 9, 7]]
    assert p.position_ids_RW.tolist() == [[3, 4, 5], [3, 4, 2]]
    assert p.prompt_slots_RS.tolist() == [[1, 1], [0, 1]]  # slots in response order
    # row 1, column 2 (b0's only token): its own prompt (slot 0: columns 0..2, first is padding)
    # and itself; not b2's prompt (slot 1) nor b2's tokens.
    assert p.mask_R1WK[1, 0, 2].long().tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 1]
    # row 1, column 1 (b2's second token): prompt 1 fully, b2's two columns causally
    assert p.mask_R1WK[1, 0, 1].long().tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 0]
    # row 0's unused second slot is masked everywhere
    assert not p.mask_R1WK[0, 0, :, 3:6].any()
    # predictors into [last prompt state per response (3) ; rows * width (6)]
    assert p.predictor_N.tolist() == [0, 1, 3, 4, 2, 6]
