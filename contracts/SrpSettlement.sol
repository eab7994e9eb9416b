// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @dev The one ERC-20 call the settlement makes.
interface ISettlementToken {
    function transfer(address to, uint256 value) external returns (bool);
}

/// @title SrpSettlement
/// @notice Pays SRP providers their earnings, with the protocol's share alongside, against
/// vouchers signed by the hub. A voucher is the EIP-712 struct `Payout(address payee,uint256 total)`
/// where `total` is the cumulative amount the provider has been owed so far; it never
/// decreases, so the newest voucher supersedes all earlier ones and an old one pays nothing.
///
/// For a provider total `t` the protocol's cumulative share is `ceil(t / 9)`: provider and
/// protocol split 90 : 10. A claim pays the provider `t - paid` and the protocol
/// `ceil(t / 9) - ceil(paid / 9)`, both from this contract's token balance, which the hub tops
/// up by plain ERC-20 transfers to this contract's address.
contract SrpSettlement {
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("SRP Settlement");
    bytes32 private constant VERSION_HASH = keccak256("1");

    /// @notice keccak256("Payout(address payee,uint256 total)")
    bytes32 public constant PAYOUT_TYPEHASH = keccak256("Payout(address payee,uint256 total)");

    /// @dev Half the secp256k1 group order: signatures with a larger `s` are malleable copies.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice The ERC-20 token paid out (USDC).
    address public immutable token;
    /// @notice The deployer; the only account that may change `signer` and `protocol`.
    address public immutable owner;
    /// @notice The hub key whose vouchers this contract honours.
    address public signer;
    /// @notice Where the protocol's share goes.
    address public protocol;
    /// @notice Cumulative amount paid to each provider (the provider part only).
    mapping(address => uint256) public paid;

    /// @notice A voucher was honoured. `total` is the new cumulative provider amount.
    event Claimed(address indexed payee, uint256 total, uint256 providerAmount, uint256 protocolAmount);
    /// @notice The voucher signer changed.
    event SignerChanged(address indexed previousSigner, address indexed newSigner);
    /// @notice The protocol share recipient changed.
    event ProtocolChanged(address indexed previousProtocol, address indexed newProtocol);

    /// @param token_ The ERC-20 token to pay in.
    /// @param signer_ The hub key that signs vouchers.
    /// @param protocol_ The recipient of the protocol's share.
    constructor(address token_, address signer_, address protocol_) {
        require(token_.code.length != 0, "token has no code");
        require(signer_ != address(0), "signer is the zero address");
        require(protocol_ != address(0), "protocol is the zero address");
        token = token_;
        owner = msg.sender;
        signer = signer_;
        protocol = protocol_;
        emit SignerChanged(address(0), signer_);
        emit ProtocolChanged(address(0), protocol_);
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "caller is not the owner");
        _;
    }

    /// @notice Replaces the voucher signer (key rotation). Vouchers by the old key stop working.
    function setSigner(address newSigner) external onlyOwner {
        require(newSigner != address(0), "signer is the zero address");
        emit SignerChanged(signer, newSigner);
        signer = newSigner;
    }

    /// @notice Replaces the recipient of the protocol's share.
    function setProtocol(address newProtocol) external onlyOwner {
        require(newProtocol != address(0), "protocol is the zero address");
        emit ProtocolChanged(protocol, newProtocol);
        protocol = newProtocol;
    }

    /// @notice The protocol's cumulative share for a cumulative provider total: ceil(total / 9).
    function protocolShare(uint256 total) public pure returns (uint256) {
        // Same value as (total + 8) / 9, without overflowing near type(uint256).max.
        return total / 9 + (total % 9 == 0 ? 0 : 1);
    }

    /// @notice The EIP-712 domain separator for the current chain.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    /// @notice The EIP-712 digest a hub signs for `Payout(payee, total)`.
    function payoutDigest(address payee, uint256 total) public view returns (bytes32) {
        return keccak256(
            abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), keccak256(abi.encode(PAYOUT_TYPEHASH, payee, total)))
        );
    }

    /// @notice Pays `payee` up to the signed running `total`, with the protocol's share.
    /// Anyone may submit a voucher; the money always goes to `payee` and `protocol`.
    /// A voucher whose total is not above what was already paid pays nothing.
    /// @return providerAmount Paid to `payee` now.
    /// @return protocolAmount Paid to `protocol` now.
    function claim(address payee, uint256 total, bytes calldata signature)
        external
        returns (uint256 providerAmount, uint256 protocolAmount)
    {
        (providerAmount, protocolAmount) = _settle(payee, total, signature);
        if (providerAmount != 0) _pay(payee, providerAmount);
        if (protocolAmount != 0) _pay(protocol, protocolAmount);
    }

    /// @notice `claim` for many vouchers in one transaction. Replayed entries pay nothing and do
    /// not revert the batch; the protocol's share is paid in one transfer at the end.
    /// @return providerTotal Paid to all payees together.
    /// @return protocolTotal Paid to `protocol`.
    function claimBatch(address[] calldata payees, uint256[] calldata totals, bytes[] calldata signatures)
        external
        returns (uint256 providerTotal, uint256 protocolTotal)
    {
        uint256 n = payees.length;
        require(totals.length == n && signatures.length == n, "array lengths differ");
        for (uint256 i = 0; i < n; ++i) {
            (uint256 providerAmount, uint256 protocolAmount) = _settle(payees[i], totals[i], signatures[i]);
            if (providerAmount != 0) {
                _pay(payees[i], providerAmount);
                providerTotal += providerAmount;
                protocolTotal += protocolAmount;
            }
        }
        if (protocolTotal != 0) _pay(protocol, protocolTotal);
    }

    /// @dev Checks the voucher and records it (effects before any transfer).
    function _settle(address payee, uint256 total, bytes calldata signature)
        private
        returns (uint256 providerAmount, uint256 protocolAmount)
    {
        require(_recover(payoutDigest(payee, total), signature) == signer, "invalid signature");
        uint256 before = paid[payee];
        if (total <= before) return (0, 0);
        paid[payee] = total;
        providerAmount = total - before;
        protocolAmount = protocolShare(total) - protocolShare(before);
        emit Claimed(payee, total, providerAmount, protocolAmount);
    }

    /// @dev ERC-20 transfer that accepts tokens returning nothing and bubbles the token's revert
    /// reason (for example an insufficient balance).
    function _pay(address to, uint256 value) private {
        (bool ok, bytes memory data) = token.call(abi.encodeCall(ISettlementToken.transfer, (to, value)));
        if (!ok) {
            if (data.length == 0) revert("token transfer failed");
            assembly ("memory-safe") {
                revert(add(data, 32), mload(data))
            }
        }
        require(data.length == 0 || abi.decode(data, (bool)), "token transfer failed");
    }

    /// @dev Recovers the signer of a 65-byte `r || s || v` signature, rejecting malleable
    /// (high-s) signatures, a `v` other than 27 or 28 and the zero address.
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address recovered) {
        require(signature.length == 65, "invalid signature length");
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        require(uint256(s) <= HALF_ORDER, "invalid signature 's' value");
        require(v == 27 || v == 28, "invalid signature 'v' value");
        recovered = ecrecover(digest, v, r, s);
        require(recovered != address(0), "invalid signature");
    }
}
